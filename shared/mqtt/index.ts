// Public surface of the MQTT 3.1.1 client used by the agent's transport and the hub's gateway.
export { type IncomingMessage, MqttClient, type MqttConnectOptions, parseBrokerUrl } from "./client.ts";
export { MqttProtocolError } from "./packets.ts";
