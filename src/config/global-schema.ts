// The JSON Schema of the global configuration (docs/config.md). Kept here as
// a const, so the task body schema is shared by reference and tsc checks it;
// configs/otus-config.schema.json is generated from it
// (scripts/gen-config-schema.ts) for editors, and a test keeps the two equal.
// Defaults that depend on the machine (node.id, node.hostname,
// command_channel.kafka.group_id and client_id) are filled in by src/config/global.ts.

import { KAFKA_BROKERS_SCHEMA, KAFKA_SASL_SCHEMA, KAFKA_TLS_SCHEMA } from './kafka-connection.js';
import { TASK_BODY_SCHEMA, TASK_SCHEMA } from './task.js';

const MS = { type: 'integer', minimum: 1, maximum: 86_400_000 } as const;
const ID = { type: 'integer', minimum: 0, maximum: 4_294_967_294 } as const;
/** Kafka's topic names. */
const TOPIC = { type: 'string', pattern: '^[A-Za-z0-9._-]{1,249}$' } as const;
/** Send ring sizes the ring accepts (src/shm/ring.ts): powers of two, 1 MiB to 256 MiB. */
export const RING_SIZES = [20, 21, 22, 23, 24, 25, 26, 27, 28].map((k) => 2 ** k);
/**
 * A task's send ring and flow registry unless configured, sized for 10 K
 * active calls within the agent's 256 MB (bench/memory.ts): a call takes 4
 * registry entries (RTP and RTCP of each side), 40 K of 65536 slots (20 MiB);
 * 16 MiB of ring holds over 50 K records of JSON-sized wire records.
 */
export const DEFAULT_RING_BYTES = 16 << 20;
export const DEFAULT_FLOW_SLOTS = 65536;

export const GLOBAL_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    otus: {
      type: 'object',
      default: {},
      additionalProperties: false,
      properties: {
        node: {
          type: 'object',
          default: {},
          additionalProperties: false,
          properties: {
            id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' },
            hostname: { type: 'string', minLength: 1, maxLength: 253 },
            ip: { type: ['string', 'null'], default: null },
            labels: {
              type: 'object',
              default: {},
              // Label keys, as records carry them (the label processor adds these to records).
              propertyNames: { pattern: '^[a-z0-9][a-z0-9.-]*$' },
              additionalProperties: { type: 'string' },
            },
          },
        },
        control: {
          type: 'object',
          default: {},
          additionalProperties: false,
          properties: {
            // sun_path holds 107 bytes and a NUL.
            socket: { type: 'string', pattern: '^/', maxLength: 107, default: '/run/otus/otus.sock' },
            mode: { type: 'string', pattern: '^0?[0-7]{3}$', default: '0660' },
            group: { type: ['string', 'integer', 'null'], pattern: '^([A-Za-z_][A-Za-z0-9_.-]{0,31}|[0-9]+)$', minimum: 0, maximum: 4_294_967_294, default: null },
            allowed_uids: { type: 'array', items: ID, default: [] },
            allowed_gids: { type: 'array', items: ID, default: [] },
          },
        },
        resources: {
          type: 'object',
          default: {},
          additionalProperties: false,
          properties: {
            max_workers: { type: 'integer', minimum: 0, maximum: 4096, default: 0 },
            cpus: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 4095 }, uniqueItems: true, default: [] },
            // The flow registry's limits (src/shm/registry.ts); rounded up to a power of two.
            flow_registry_slots: { type: 'integer', minimum: 16, maximum: 16_777_216, default: DEFAULT_FLOW_SLOTS },
            ring_bytes: { enum: RING_SIZES, default: DEFAULT_RING_BYTES },
            tcp_reassembly_bytes: { type: 'integer', minimum: 1_048_576, maximum: 17_179_869_184, default: 134_217_728 },
          },
        },
        supervisor: {
          type: 'object',
          default: {},
          additionalProperties: false,
          properties: {
            heartbeat_ms: { ...MS, minimum: 10, default: 1000 },
            watchdog_ms: { ...MS, minimum: 20, default: 5000 },
            stop_timeout_ms: { ...MS, default: 5000 },
            restart: {
              type: 'object',
              default: {},
              additionalProperties: false,
              properties: {
                initial_ms: { ...MS, default: 100 },
                max_ms: { ...MS, default: 10000 },
                healthy_ms: { ...MS, default: 60000 },
                budget: { type: 'integer', minimum: 0, maximum: 1_000_000, default: 5 },
                window_ms: { ...MS, default: 60000 },
              },
            },
          },
        },
        reporters: {
          type: 'object',
          default: { console: {} },
          // Reporter plugin names; each reporter validates its merged settings itself.
          propertyNames: { pattern: '^[a-z][a-z0-9_-]*$' },
          additionalProperties: { type: 'object' },
        },
        tasks: { type: 'array', items: TASK_BODY_SCHEMA, default: [] },
        tasks_dir: { type: ['string', 'null'], minLength: 1, default: null },
        command_channel: {
          type: 'object',
          default: {},
          additionalProperties: false,
          properties: {
            enabled: { type: 'boolean', default: false },
            type: { enum: ['kafka'], default: 'kafka' },
            kafka: {
              type: 'object',
              default: {},
              additionalProperties: false,
              // The connection settings in the kafka reporter's shape (src/config/kafka-connection.ts).
              properties: {
                brokers: { ...KAFKA_BROKERS_SCHEMA, minItems: 0, default: [] },
                topic: { ...TOPIC, default: 'otus-commands' },
                status_topic: { ...TOPIC, default: 'otus-status' },
                group_id: { type: 'string', minLength: 1, maxLength: 255 },
                client_id: { type: 'string', minLength: 1, maxLength: 255 },
                create_topics: { type: 'boolean', default: true },
                tls: KAFKA_TLS_SCHEMA,
                sasl: KAFKA_SASL_SCHEMA,
              },
            },
            auth: {
              type: 'object',
              default: {},
              additionalProperties: false,
              properties: {
                // At most one of the two (src/config/global.ts); `key` only as ${NAME}, never inline.
                key_file: { type: ['string', 'null'], minLength: 1, default: null },
                key: { type: ['string', 'null'], default: null },
                max_age_ms: { ...MS, minimum: 1000, default: 300_000 },
              },
            },
            heartbeat_ms: { ...MS, minimum: 100, default: 30_000 },
            retry_max_ms: { ...MS, minimum: 100, default: 30_000 },
          },
        },
        metrics: {
          type: 'object',
          default: {},
          additionalProperties: false,
          properties: {
            enabled: { type: 'boolean', default: true },
            listen: { type: 'string', pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[^\\s:\\[\\]]+):[0-9]{1,5}$', default: '127.0.0.1:9469' },
            path: { type: 'string', pattern: '^/', default: '/metrics' },
          },
        },
        log: {
          type: 'object',
          default: {},
          additionalProperties: false,
          properties: {
            level: { enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'], default: 'info' },
            // Of the stderr, stdout and file outputs; Loki always gets JSON.
            format: { enum: ['json', 'text'], default: 'json' },
            rate_limit_ms: { ...MS, minimum: 100, default: 60000 },
            // At most one of each; the ones listed are written (src/log/logger.ts).
            outputs: {
              type: 'object',
              default: { stderr: {} },
              minProperties: 1,
              additionalProperties: false,
              properties: {
                stderr: { type: 'object', additionalProperties: false, properties: {} },
                stdout: { type: 'object', additionalProperties: false, properties: {} },
                file: {
                  type: 'object',
                  additionalProperties: false,
                  required: ['path'],
                  properties: {
                    path: { type: 'string', pattern: '^/', maxLength: 4096 },
                    size_bytes: { type: 'integer', minimum: 1024, maximum: 68_719_476_736, default: 104_857_600 },
                    interval_ms: { type: ['integer', 'null'], minimum: 1000, maximum: 2_678_400_000, default: null },
                    count: { type: 'integer', minimum: 1, maximum: 10000, default: 10 },
                  },
                },
                loki: {
                  type: 'object',
                  additionalProperties: false,
                  required: ['endpoint'],
                  properties: {
                    endpoint: { type: 'string', pattern: '^https?://[^\\s]+$' },
                    // Stream labels (the node id is added as `node`): few and fixed, as Loki indexes them.
                    labels: {
                      type: 'object',
                      default: { job: 'otus' },
                      propertyNames: { pattern: '^(?!node$)[A-Za-z_][A-Za-z0-9_]*$' },
                      additionalProperties: { type: 'string' },
                    },
                    headers: { type: 'object', default: {}, additionalProperties: { type: 'string' } },
                    batch_size: { type: 'integer', minimum: 1, maximum: 100_000, default: 1000 },
                    batch_timeout_ms: { ...MS, default: 1000 },
                    max_buffer_bytes: { type: 'integer', minimum: 65536, maximum: 1_073_741_824, default: 16_777_216 },
                    timeout_ms: { ...MS, default: 10000 },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
} as const;

/** The schema files in configs/: what scripts/gen-config-schema.ts writes, and a test compares. */
export function schemaFiles(): Record<string, Record<string, unknown>> {
  const head = (id: string, title: string) => ({ $schema: 'http://json-schema.org/draft-07/schema#', $id: id, title });
  return {
    'otus-config.schema.json': { ...head('otus-config.schema.json', 'Otus global configuration (docs/config.md)'), ...GLOBAL_CONFIG_SCHEMA },
    'otus-task.schema.json': { ...head('otus-task.schema.json', 'Otus task file (configs/README.md)'), ...TASK_SCHEMA },
  };
}
