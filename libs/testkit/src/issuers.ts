/**
 * Stand-in token issuers for tests of one service on its own: a key pair and
 * a JWKS document served on a loopback port, exactly as a real Meridian
 * service publishes it, so the service under test verifies tokens the way it
 * does in production (fetching the issuer's keys over HTTP).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import {
  generateSigningJwk,
  importSigningKey,
  jwksDocument,
  jwksPath,
  type Role,
  type SigningKey,
  TokenSigner,
} from "@meridian/platform";

export interface TestIssuer {
  /** The issuer's name, e.g. "user-service". */
  readonly name: string;
  /** http://127.0.0.1:port: pass it where the service expects that neighbour's URL. */
  readonly url: string;
  readonly key: SigningKey;
  /** A user token, as user-service's Authenticate would issue. */
  userToken(userId: string, roles?: readonly Role[], ttlSeconds?: number): Promise<string>;
  /** The issuer's own service identity token. */
  serviceToken(ttlSeconds?: number): Promise<string>;
  close(): Promise<void>;
}

export async function startTestIssuer(name: string): Promise<TestIssuer> {
  const key = await importSigningKey(JSON.stringify(await generateSigningJwk()));
  const signer = new TokenSigner(name, key);
  const body = JSON.stringify(jwksDocument([key]));
  const server = http.createServer((req, res) => {
    if (req.url === jwksPath) {
      res.writeHead(200, { "content-type": "application/jwk-set+json" }).end(body);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    key,
    async userToken(userId, roles = ["customer"], ttlSeconds = 600) {
      return (await signer.sign({ subject: userId, roles, ttlSeconds })).token;
    },
    async serviceToken(ttlSeconds = 600) {
      return (await signer.sign({ subject: name, ttlSeconds })).token;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
