/**
 * Signing keys for the services that sign tokens (user-service, order-service).
 *
 *   npm run keygen                          prints a new Ed25519 private key (a JWK),
 *                                           the value of a service's AUTH_SIGNING_KEY
 *   keygen.js --out <file> [--out <file>]   writes a new key to each file that does not
 *                                           exist yet and keeps the ones that do, for
 *                                           AUTH_SIGNING_KEY_FILE (docker-compose.yml's
 *                                           `keys` service runs this)
 *
 * Keep keys secret (a secret store or a volume, never an image); a service
 * publishes only the public half, at /.well-known/jwks.json.
 */
import { parseArgs } from "node:util";
import { ensureSigningKeyFile, generateSigningJwk, importSigningKey } from "../tokens.js";

const { values } = parseArgs({ options: { out: { type: "string", multiple: true } } });

if (values.out === undefined) {
  console.log(JSON.stringify(await generateSigningJwk()));
} else {
  for (const file of values.out) {
    const key = await importSigningKey(await ensureSigningKeyFile(file));
    console.log(`${file}: key ${key.kid}`);
  }
}
