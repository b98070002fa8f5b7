// A charging station of another OCPP implementation than the gateway's:
// ocpp-rpc (Node.js), with its strict schema validation on, so that each
// frame the gateway sends is checked against the OCPP schemas by code that
// shares nothing with the Python `ocpp` library.
//
//   node station.mjs ENDPOINT CHARGE_POINT_ID PASSWORD PROTOCOL BADGE_UID [stay]
//
// ENDPOINT is the gateway's station path without the id (ws://HOST:PORT/ocpp),
// PROTOCOL is ocpp1.6 or ocpp2.0.1. The station connects with HTTP Basic
// authentication, boots, authorizes the badge, starts a transaction, sends a
// meter reading and stops, and answers the gateway's GetLocalListVersion and
// SendLocalList. With "stay", it then stays connected (printing
// {"staying": true}), answering the gateway's calls, until its standard
// input closes. Each call and its answer, each call the gateway made and the
// answer given, is printed as one JSON line on stdout. The exit status is 0
// only when every call was answered, the gateway's local list arrived and no
// frame failed validation on either side.

import { RPCClient, createRPCError } from "ocpp-rpc";

const [endpoint, identity, password, protocol, uid, mode] = process.argv.slice(2);
const PROTOCOLS = ["ocpp1.6", "ocpp2.0.1"];
if (!uid || !PROTOCOLS.includes(protocol) || (mode !== undefined && mode !== "stay")) {
  console.error(
    "usage: node station.mjs ENDPOINT CHARGE_POINT_ID PASSWORD ocpp1.6|ocpp2.0.1 BADGE_UID [stay]",
  );
  process.exit(2);
}
const v16 = protocol === "ocpp1.6";

// What the station sends, printed with each call so that the test compares
// the platform's records with what was really sent.
const VENDOR = "Interop Works";
const MODEL = "ocpp-rpc station";
const METER_START_WH = 1000;
const METER_MIDDLE_KWH = 1.5;
const METER_STOP_WH = 2500;
const LIST_WAIT_MS = 30000; // the gateway sends its list within seconds of the boot

const failures = [];
const state = { listVersion: 0, list: new Map(), listArrived: null };
const listArrived = new Promise((resolve) => {
  state.listArrived = resolve;
});

function emit(line) {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const client = new RPCClient({
  endpoint,
  identity,
  password,
  protocols: [protocol],
  strictMode: true,
  reconnect: false,
  callTimeoutMs: 20000,
});

client.on("strictValidationFailure", (event) => {
  const failure = {
    strictValidationFailure: event.method,
    outbound: event.outbound,
    isCall: event.isCall,
    params: event.params,
    result: event.result,
    error: String(event.error?.message ?? event.error),
    details: event.error?.details,
  };
  failures.push(failure);
  emit(failure);
});
client.on("badMessage", (event) => {
  const failure = { badMessage: String(event.buffer), error: String(event.error) };
  failures.push(failure);
  emit(failure);
});

// --- the gateway's calls ------------------------------------------------------------------

function tagOf(entry) {
  return v16 ? entry.idTag : entry.idToken?.idToken;
}

function infoOf(entry) {
  return v16 ? entry.idTagInfo : entry.idTokenInfo;
}

client.handle("GetLocalListVersion", ({ params }) => {
  const answer = v16 ? { listVersion: state.listVersion } : { versionNumber: state.listVersion };
  emit({ handled: "GetLocalListVersion", params, answer });
  return answer;
});

client.handle("SendLocalList", ({ params }) => {
  const version = v16 ? params.listVersion : params.versionNumber;
  const entries = params.localAuthorizationList ?? [];
  if (params.updateType === "Full") {
    state.list.clear();
  }
  for (const entry of entries) {
    const info = infoOf(entry);
    if (info) {
      state.list.set(tagOf(entry), info);
    } else {
      state.list.delete(tagOf(entry));
    }
  }
  state.listVersion = version;
  const answer = { status: "Accepted" };
  emit({ handled: "SendLocalList", params, answer, held: Object.fromEntries(state.list) });
  state.listArrived();
  return answer;
});

client.handle(({ method, params }) => {
  // Anything else the gateway might call: refused in OCPP's words.
  emit({ handled: method, params, answer: "NotImplemented" });
  throw createRPCError("NotImplemented", `${method} is not implemented by this station`);
});

// --- the station's conversation -------------------------------------------------------------

async function ask(method, params) {
  const answer = await client.call(method, params);
  emit({ call: method, params, answer });
  return answer;
}

function reading(value, unit, at) {
  return v16
    ? { timestamp: at, sampledValue: [{ value: String(value), unit }] }
    : {
        timestamp: at,
        sampledValue: [
          {
            value,
            measurand: "Energy.Active.Import.Register",
            unitOfMeasure: { unit },
          },
        ],
      };
}

function now(offsetSeconds = 0) {
  return new Date(Date.now() + offsetSeconds * 1000).toISOString();
}

async function converse16() {
  await ask("BootNotification", {
    chargePointVendor: VENDOR,
    chargePointModel: MODEL,
    firmwareVersion: "1.0.0",
  });
  await ask("StatusNotification", { connectorId: 1, errorCode: "NoError", status: "Available" });
  await ask("Authorize", { idTag: uid });
  const started = await ask("StartTransaction", {
    connectorId: 1,
    idTag: uid,
    meterStart: METER_START_WH,
    timestamp: now(-120),
  });
  await ask("MeterValues", {
    connectorId: 1,
    transactionId: started.transactionId,
    meterValue: [reading(METER_MIDDLE_KWH, "kWh", now(-60))],
  });
  await listReceived();
  await ask("StopTransaction", {
    transactionId: started.transactionId,
    idTag: uid,
    meterStop: METER_STOP_WH,
    timestamp: now(),
    reason: "Local",
  });
}

async function converse201() {
  const token = { idToken: uid, type: "ISO14443" };
  const evse = { id: 1, connectorId: 1 };
  const transactionId = `interop-${Date.now()}`;
  await ask("BootNotification", {
    reason: "PowerUp",
    chargingStation: { vendorName: VENDOR, model: MODEL, firmwareVersion: "1.0.0" },
  });
  await ask("StatusNotification", {
    timestamp: now(),
    connectorStatus: "Available",
    evseId: 1,
    connectorId: 1,
  });
  await ask("Authorize", { idToken: token });
  await ask("TransactionEvent", {
    eventType: "Started",
    timestamp: now(-120),
    triggerReason: "Authorized",
    seqNo: 0,
    transactionInfo: { transactionId, chargingState: "Charging" },
    idToken: token,
    evse,
    meterValue: [reading(METER_START_WH, "Wh", now(-120))],
  });
  await ask("MeterValues", {
    evseId: 1,
    meterValue: [reading(METER_MIDDLE_KWH, "kWh", now(-60))],
  });
  await listReceived();
  await ask("TransactionEvent", {
    eventType: "Ended",
    timestamp: now(),
    triggerReason: "StopAuthorized",
    seqNo: 1,
    transactionInfo: { transactionId, stoppedReason: "Local" },
    idToken: token,
    evse,
    meterValue: [reading(METER_STOP_WH, "Wh", now())],
  });
}

async function listReceived() {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no SendLocalList within ${LIST_WAIT_MS / 1000} s`)),
      LIST_WAIT_MS,
    );
  });
  try {
    await Promise.race([listArrived, late]);
  } finally {
    clearTimeout(timer);
  }
}

function stdinClosed() {
  return new Promise((resolve, reject) => {
    process.stdin.on("end", resolve);
    process.stdin.on("close", resolve);
    process.stdin.resume();
    client.once("disconnect", ({ code, reason }) => {
      reject(new Error(`the gateway closed the connection: ${code} ${reason}`));
    });
  });
}

let status = 0;
try {
  await client.connect();
  emit({ connected: client.protocol });
  await (v16 ? converse16() : converse201());
  if (mode === "stay") {
    emit({ staying: true });
    await stdinClosed();
  }
} catch (error) {
  emit({ error: String(error?.message ?? error), code: error?.rpcErrorCode, details: error?.details });
  status = 1;
} finally {
  await client.close({ code: 1000, reason: "done", awaitPending: true });
}
if (failures.length > 0) {
  status = 1;
}
process.exit(status);
