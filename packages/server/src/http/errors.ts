// Every error the API answers is one JSON shape, OpenAI-style:
// {"error": {"type", "code", "message", "param"}}. Handlers throw ApiError (or the
// generator's RequestFieldError); the handlers installed here turn those, fastify's
// own errors and anything unexpected into that shape.
import type { ErrorObject } from "ajv";
import type { FastifyError, FastifyInstance, FastifyReply } from "fastify";
import { RequestFieldError } from "../generator.js";
import type { Metrics } from "../metrics.js";
import { isDiskFull, StorageFullError } from "../storage.js";
import { describeSchemaError } from "../validation.js";

/** An error with the HTTP status, code and parameter the client should see. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function errorBody(
  code: string,
  message: string,
  param: string | null,
  type = "invalid_request_error",
) {
  return { error: { type, code, message, param } };
}

export function sendError(
  reply: FastifyReply,
  status: number,
  code: string,
  message: string,
  param: string | null,
  type?: string,
): FastifyReply {
  return reply.code(status).send(errorBody(code, message, param, type));
}

/** Cuts client-sent text quoted back in a message, so an error never echoes a huge value. */
export function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

/** The error handler and the 404 for unknown routes, both answering in the JSON error shape. */
export function installErrorHandlers(app: FastifyInstance, metrics: Metrics): void {
  app.setErrorHandler((err: FastifyError & Partial<ApiError>, req, reply) => {
    if (err instanceof ApiError) {
      reply.headers(err.headers);
      return sendError(reply, err.status, err.code, err.message, err.param);
    }
    // The server's disk, never the client's fault: 507 (the request may be retried later).
    if (err instanceof StorageFullError || isDiskFull(err)) {
      metrics.rejected("storage_full");
      req.log.error(err);
      const message =
        err instanceof StorageFullError
          ? err.message
          : "the server's disk is full: this request could not be stored; retry once its operator has freed space";
      return sendError(reply, 507, "insufficient_storage", message, null, "server_error");
    }
    if (err instanceof RequestFieldError) {
      metrics.rejected("invalid");
      return sendError(reply, 400, "invalid_field", err.message, err.field);
    }
    if (err.validation) {
      const d = describeSchemaError(err.validation[0] as ErrorObject, err.validationContext ?? "body");
      if (req.method === "POST") metrics.rejected("invalid");
      return sendError(reply, 400, "invalid_field", d.message, d.field);
    }
    switch (err.code) {
      case "FST_ERR_CTP_INVALID_JSON_BODY":
      case "FST_ERR_CTP_EMPTY_JSON_BODY":
        return sendError(reply, 400, "invalid_json", `the body is not valid JSON: ${err.message}`, "body");
      case "FST_ERR_CTP_BODY_TOO_LARGE":
        return sendError(reply, 413, "body_too_large", err.message, "body");
      case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
        return sendError(
          reply,
          415,
          "unsupported_media_type",
          "send application/json or multipart/form-data",
          "content-type",
        );
    }
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500)
      return sendError(reply, err.statusCode, err.code ?? "bad_request", err.message, null);
    req.log.error(err);
    return sendError(reply, 500, "internal_error", "internal server error", null, "server_error");
  });
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, 404, "not_found", `no route ${req.method} ${req.url.split("?")[0]}`, null),
  );
}
