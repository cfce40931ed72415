export {
  createMetrics,
  E2E_BUCKETS_S,
  LATENCY_BUCKETS_S,
  type Metrics,
  type MetricsOptions,
  type QueueStats,
  type StreamObservation,
} from './metrics.ts';
