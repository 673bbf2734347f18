// Starts a gRPC Firestore emulator (@firestore-emulator/server) on 127.0.0.1 only.
// Usage: node server.mjs [port]   (port 0 or absent = a free port)
// Prints one JSON line {"ready": true, "host": "127.0.0.1:PORT"} once it accepts connections,
// then runs until SIGINT/SIGTERM or until its parent closes stdin.
import { createRequire } from "node:module";
import net from "node:net";
import { FirestoreServer } from "@firestore-emulator/server";

// The gRPC package the emulator itself uses (its dependency, resolved from it): same instance.
const require = createRequire(import.meta.url);
const grpc = createRequire(require.resolve("@firestore-emulator/server"))("@grpc/grpc-js");

async function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

const requested = Number.parseInt(process.argv[2] ?? "0", 10);
if (Number.isNaN(requested) || requested < 0 || requested > 65535) {
  console.error(`emulator: invalid port ${process.argv[2]}`);
  process.exit(2);
}
const port = requested || (await freePort());
const server = new FirestoreServer();
// Upstream start() binds 0.0.0.0: every interface, no auth (anyone on the network could read and
// forge results). Bind its gRPC server to loopback instead.
await new Promise((resolve, reject) => {
  server.server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) =>
    err ? reject(err) : resolve(),
  );
});
console.log(JSON.stringify({ ready: true, host: `127.0.0.1:${port}` }));

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  try {
    await server.stop?.();
  } finally {
    process.exit(0);
  }
}
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
if (process.argv.includes("--exit-with-stdin")) {
  process.stdin.on("end", stop);
  process.stdin.resume();
}
