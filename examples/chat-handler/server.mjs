// A reference chat event handler for Azure Web PubSub for Socket.IO in Serverless mode: the code
// that `sio-emu serve` calls for every client event, and that `sio-emu replay` tests in CI.
//
// It is a plain node:http server speaking the documented webhook protocol (CloudEvents binary
// mode, docs/protocol.md §5 / §6 in the sio-emu repository) and the official REST SDK `@azure/web-pubsub`:
//
//   connect       refuses namespace /private and the user `mallory` (401, body `not allowed`)
//   connected     accepted, nothing to do
//   join  room    adds the socket to the room (REST AddConnectionsToGroups), acks ["joined", room]
//   say   room, text   sends ["message", user, text] to the room (REST SendToGroup, text/plain),
//                      acks ["sent"]
//   kick  socketId     disconnects that socket of the namespace by sending it `41/ns,` (REST
//                      SendToGroup to the socket's own group), acks ["kicked", socketId]
//   disconnected  accepted, nothing to do
//
// Like an Azure Functions app it reads its connection string from `WebPubSubConnectionString`
// and checks every request: the abuse-protection preflight must come from the endpoint's host,
// and `ce-signature` must carry HMAC-SHA256(AccessKey, connectionId).
//
// Usage: WebPubSubConnectionString='Endpoint=http://localhost:8080;AccessKey=…;Version=1.0;' \
//          node server.mjs [PORT]          (PORT defaults to $PORT, then 3000; 0 picks a free one)
// The first stdout line is `listening on http://localhost:<port>`.

import { createHmac } from "node:crypto";
import { createServer } from "node:http";
import { WebPubSubServiceClient } from "@azure/web-pubsub";

const connectionString = process.env.WebPubSubConnectionString;
if (!connectionString) {
  console.error(
    "chat-handler: set WebPubSubConnectionString, e.g. the `connection` line printed by `sio-emu serve`:\n" +
      "  Endpoint=http://localhost:8080;AccessKey=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH;Version=1.0;",
  );
  process.exit(2);
}
const port = Number(process.argv[2] ?? process.env.PORT ?? 3000);

/** `Endpoint=…;AccessKey=…;Version=1.0;` → { Endpoint, AccessKey, … } (values may contain `=`). */
function parseConnectionString(text) {
  const fields = {};
  for (const part of text.split(";")) {
    const at = part.indexOf("=");
    if (at > 0) fields[part.slice(0, at).trim().toLowerCase()] = part.slice(at + 1).trim();
  }
  return fields;
}

const settings = parseConnectionString(connectionString);
const accessKey = settings.accesskey ?? "";
/** What the service sends as WebHook-Request-Origin: the endpoint's host, no scheme, no port. */
const serviceHost = new URL(settings.endpoint).hostname.replace(/^\[|\]$/g, "").toLowerCase();

// One REST client per hub; `allowInsecureConnection` because the emulator speaks http://.
const services = new Map();
function service(hub) {
  let client = services.get(hub);
  if (!client) {
    client = new WebPubSubServiceClient(connectionString, hub, { allowInsecureConnection: true });
    services.set(hub, client);
  }
  return client;
}

// Socket.IO groups (docs/protocol.md §8): a room is `0~b64url(namespace)~b64url(room)`; every socket is in
// the room named by its own id.
const b64url = (text) => Buffer.from(text, "utf8").toString("base64url");
const roomGroup = (ns, room) => `0~${b64url(ns)}~${b64url(room)}`;
const nsPrefix = (ns) => (ns === "/" ? "" : `${ns},`);
/** An EVENT packet for REST sends: `42[/ns,]["event",…]`. */
const eventPacket = (ns, args) => `42${nsPrefix(ns)}${JSON.stringify(args)}`;
/** The ACK packet answering an event with ack id `id`: `43[/ns,]<id>[…]`. */
const ackPacket = (ns, id, args) => `43${nsPrefix(ns)}${id}${JSON.stringify(args)}`;

/** A user event's body `42[/ns,][id][json]` → { ns, id, args } (id undefined without ack). */
function parseEventPacket(body) {
  const match = /^42(?:(\/[^,]*),)?(\d*)([\s\S]*)$/.exec(body);
  if (!match) return undefined;
  let args;
  try {
    args = JSON.parse(match[3]);
  } catch {
    return undefined;
  }
  if (!Array.isArray(args)) return undefined;
  return { ns: match[1] ?? "/", id: match[2] === "" ? undefined : match[2], args };
}

function signatureValid(connectionId, header) {
  const expected = "sha256=" + createHmac("sha256", accessKey).update(connectionId).digest("hex");
  return (header ?? "")
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .includes(expected);
}

/** What one event makes the handler do: { status, body, contentType }. */
async function handle(req, body) {
  const hub = req.headers["ce-hub"];
  const event = req.headers["ce-eventname"];
  const ns = req.headers["ce-namespace"] ?? "/";
  const socketId = req.headers["ce-socketid"];
  const user = req.headers["ce-userid"] || socketId;
  const system = String(req.headers["ce-type"] ?? "").startsWith("azure.webpubsub.sys.");

  if (system) {
    switch (event) {
      case "connect":
        if (ns === "/private" || req.headers["ce-userid"] === "mallory") {
          return { status: 401, body: "not allowed" };
        }
        return { status: 200 };
      case "connected":
      case "disconnected":
        return { status: 200 };
      default:
        return { status: 404, body: `unknown system event ${event}` };
    }
  }

  const packet = parseEventPacket(body);
  if (!packet) return { status: 400, body: "the body is not a Socket.IO EVENT packet" };
  const [name, ...args] = packet.args;
  const reply = (ackArgs) =>
    packet.id === undefined
      ? { status: 204 }
      : { status: 200, body: ackPacket(packet.ns, packet.id, ackArgs), contentType: "text/plain" };
  const rest = service(hub);

  switch (name) {
    case "join": {
      const [room] = args;
      await rest.addConnectionsToGroups(
        [roomGroup(packet.ns, room)],
        `'${roomGroup(packet.ns, socketId)}' in groups`,
      );
      return reply(["joined", room]);
    }
    case "say": {
      const [room, text] = args;
      await rest
        .group(roomGroup(packet.ns, room))
        .sendToAll(eventPacket(packet.ns, ["message", user, text]), { contentType: "text/plain" });
      return reply(["sent"]);
    }
    case "kick": {
      const [target] = args;
      await rest
        .group(roomGroup(packet.ns, target))
        .sendToAll(`41${nsPrefix(packet.ns)}`, { contentType: "text/plain" });
      return reply(["kicked", target]);
    }
    default:
      return reply(["unknown event", name]);
  }
}

const server = createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", async () => {
    const body = Buffer.concat(chunks).toString("utf8");
    const answer = (status, text = "", contentType = "text/plain; charset=utf-8", headers = {}) => {
      res.writeHead(status, text ? { "content-type": contentType, ...headers } : headers);
      res.end(text);
    };

    // Abuse protection (docs/protocol.md §6): allow the service whose host is in our connection string.
    if (req.method === "OPTIONS" || req.method === "GET") {
      const origin = String(req.headers["webhook-request-origin"] ?? "").toLowerCase();
      if (origin === serviceHost) return answer(200, "", undefined, { "WebHook-Allowed-Origin": origin });
      return answer(400, `origin ${origin || "(none)"} is not ${serviceHost}`);
    }
    if (req.method !== "POST") return answer(405, "use POST");
    const connectionId = req.headers["ce-connectionid"] ?? "";
    if (!signatureValid(connectionId, req.headers["ce-signature"])) {
      console.log(`refused ${req.headers["ce-eventname"]}: bad ce-signature`);
      return answer(401, "invalid ce-signature");
    }
    try {
      const result = await handle(req, body);
      console.log(
        `${req.headers["ce-eventname"]} ${req.headers["ce-namespace"]} ${req.headers["ce-socketid"]} -> ${result.status}`,
      );
      answer(result.status, result.body ?? "", result.contentType);
    } catch (err) {
      console.error(`handling ${req.headers["ce-eventname"]} failed: ${err?.message ?? err}`);
      answer(500, `handler error: ${err?.message ?? err}`);
    }
  });
});

server.listen(port, "localhost", () => {
  console.log(`listening on http://localhost:${server.address().port}`);
});

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
