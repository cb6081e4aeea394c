// Kafka connection settings (brokers, TLS, SASL) in one shape for the two
// clients of Kafka: the `kafka` reporter (src/sender-proc/kafka.ts) and the
// daemon's command channel (src/supervisor/commands.ts). Their JSON Schema
// fragments and the librdkafka settings they come to.

export interface KafkaTls {
  ca?: string;
  cert?: string;
  key?: string;
}

export interface KafkaSasl {
  mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
  username: string;
  password: string;
}

export const KAFKA_BROKERS_SCHEMA = { type: 'array', minItems: 1, items: { type: 'string', pattern: '^[^\\s,]+:[0-9]{1,5}$' } } as const;

export const KAFKA_TLS_SCHEMA = {
  type: 'object',
  properties: { ca: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' } },
  additionalProperties: false,
} as const;

export const KAFKA_SASL_SCHEMA = {
  type: 'object',
  required: ['mechanism', 'username', 'password'],
  properties: {
    mechanism: { enum: ['plain', 'scram-sha-256', 'scram-sha-512'] },
    username: { type: 'string' },
    password: { type: 'string' },
  },
  additionalProperties: false,
} as const;

/** The librdkafka settings of TLS and SASL (security.protocol, sasl.*, ssl.*); none for plaintext. */
export function librdkafkaSecurity(tls: KafkaTls | undefined, sasl: KafkaSasl | undefined): Record<string, string> {
  const conf: Record<string, string> = {};
  if (sasl !== undefined) {
    conf['security.protocol'] = tls !== undefined ? 'sasl_ssl' : 'sasl_plaintext';
    conf['sasl.mechanisms'] = sasl.mechanism.toUpperCase();
    conf['sasl.username'] = sasl.username;
    conf['sasl.password'] = sasl.password;
  } else if (tls !== undefined) conf['security.protocol'] = 'ssl';
  if (tls?.ca !== undefined) conf['ssl.ca.location'] = tls.ca;
  if (tls?.cert !== undefined) conf['ssl.certificate.location'] = tls.cert;
  if (tls?.key !== undefined) conf['ssl.key.location'] = tls.key;
  return conf;
}
