export { createContext, type ServerContext, type ServerDeps } from './context.ts';
export { EngineHolder } from './engine-holder.ts';
export { ApiError, ERROR_TABLE, type ErrorCode, toApiError } from './errors.ts';
export { createApp } from './http/app.ts';
export { type StreamRecord, StreamRecorder } from './recorder.ts';
export { createServer, type ServerOptions, type SpecdServer } from './server.ts';
export { WS_PATH } from './ws/hub.ts';
