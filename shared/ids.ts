// What a node or hub id may look like: safe in MQTT topics, file names and URLs.

export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
