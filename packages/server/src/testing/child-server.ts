// A server in its own process, for tests that kill it (SIGKILL mid-run) or send
// it SIGTERM. Prints "LISTENING <url>" once it accepts requests.
import { parseArgs } from "node:util";
import { createServer } from "../app.js";
import { FakeVideoGenerator } from "./fake-generator.js";

const { values } = parseArgs({
  options: {
    data: { type: "string" },
    "step-ms": { type: "string", default: "50" },
    "drain-ms": { type: "string", default: "30000" },
  },
});
if (!values.data) throw new Error("child-server: --data is required");
const srv = await createServer({
  dataDir: values.data,
  generator: new FakeVideoGenerator({ stepMs: Number(values["step-ms"]) }),
  port: 0,
  drainTimeoutMs: Number(values["drain-ms"]),
});
const url = await srv.listen();
console.log(`LISTENING ${url} requeued=${srv.requeuedAtStart}`);
process.once("SIGTERM", () => {
  srv.close().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
});
