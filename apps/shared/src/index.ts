export {
  BodyBudget,
  type BodyBudgetStats,
  type BodyLease,
  type BodyLimits,
  type ResolvedBodyLimits,
  readBody,
  resolveBodyLimits,
} from './body.ts';
export {
  boolVar,
  ConfigError,
  type EnvReport,
  type EnvSpec,
  type EnvValues,
  type EnvVar,
  enumVar,
  hostPort,
  httpOrigin,
  intVar,
  listVar,
  numberVar,
  portVar,
  readEnv,
  stringVar,
} from './env.ts';
export {
  errorResponse,
  HttpError,
  httpErrorResponse,
  isHttpError,
  retryAfter,
  writeHttpError,
} from './errors.ts';
export {
  bodyless,
  bodyTooLarge,
  clientSignal,
  declaredLength,
  type NodeBindings,
  nodeRequest,
  nodeResponse,
  peerAddress,
  requestIdFrom,
  SHED_HEADER,
} from './http.ts';
export { DEFAULT_INPUT_FORMATS, type InputFormat, sniffImageFormat, unsupportedInput } from './image-format.ts';
export {
  type CreateLoggerOptions,
  createLogger,
  LOG_LEVELS,
  type Logger,
  type LogLevel,
  type LogRecord,
  memoryLogger,
  REDACTED_PATHS,
  silentLogger,
} from './log.ts';
export { DURATION_BUCKETS, metricsHandler, type RequestMetrics, requestMetrics } from './metrics.ts';
export {
  type AppEnv,
  type AppVariables,
  type Authenticate,
  annotate,
  anonymous,
  answeredStatus,
  type ErrorMapper,
  errorHandler,
  forApp,
  measure,
  notFound,
  requestContext,
} from './middleware.ts';
export { type HealthState, healthRoutes, type OperationalOptions, operationalApp, type ReadyState } from './operational.ts';
export { type Listening, type ListenOptions, listen, type ResolvedServerLimits, resolveServerLimits, type ServerLimits } from './serve.ts';
export {
  API_TIMING,
  HARVEST_HEADER,
  harvestOf,
  parseServerTiming,
  STAGES,
  type Stage,
  serverTiming,
  TENANT_HEADER,
} from './server-timing.ts';
export {
  ALL_ENV,
  API_ENV,
  COMMON_ENV,
  EDGE_ENV,
  GATEWAY_ENV,
  GATEWAY_STRATEGIES,
  IMAGE_ENV,
  INPUT_FORMATS,
  knownVariables,
  loadEnv,
  QUEUE_ENV,
  type ServiceStart,
  START_ENV,
  startService,
  USAGE_ENV,
  WORKER_ENV,
} from './variables.ts';
