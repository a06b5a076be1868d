/**
 * npm run keygen: prints a new Ed25519 signing key as a JWK, the value of a
 * service's AUTH_SIGNING_KEY. Keep it secret (a secret store, not an image);
 * the service publishes only its public half at /.well-known/jwks.json.
 */
import { generateSigningJwk } from "../src/tokens.js";

console.log(JSON.stringify(await generateSigningJwk()));
