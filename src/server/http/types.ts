/** Hono environment of the app: the client-disconnect signal, captured before any middleware replaces the Request. */
export interface AppEnv {
  Variables: {
    clientSignal: AbortSignal;
  };
}
