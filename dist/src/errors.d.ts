import createError from '@fastify/error';
/**
 * Every error the HTTP API answers with, defined once: logs, metrics and tests name them by code.
 * 4xx messages are shown to the caller; a 5xx answer never carries its message.
 */
export declare const Errors: {
    readonly INVALID_REQUEST: createError.FastifyErrorConstructor<{
        code: "INVALID_REQUEST";
        statusCode: 400;
    }, [any?, any?, any?]>;
    readonly NOT_FOUND: createError.FastifyErrorConstructor<{
        code: "NOT_FOUND";
        statusCode: 404;
    }, [any?, any?, any?]>;
    readonly UNAUTHORIZED: createError.FastifyErrorConstructor<{
        code: "UNAUTHORIZED";
        statusCode: 401;
    }, [any?, any?, any?]>;
    readonly STATE_COOKIE_MISSING: createError.FastifyErrorConstructor<{
        code: "STATE_COOKIE_MISSING";
        statusCode: 400;
    }, [any?, any?, any?]>;
    readonly STATE_MISMATCH: createError.FastifyErrorConstructor<{
        code: "STATE_MISMATCH";
        statusCode: 403;
    }, [any?, any?, any?]>;
    readonly STATE_UNKNOWN: createError.FastifyErrorConstructor<{
        code: "STATE_UNKNOWN";
        statusCode: 403;
    }, [any?, any?, any?]>;
    readonly STATE_EXPIRED: createError.FastifyErrorConstructor<{
        code: "STATE_EXPIRED";
        statusCode: 410;
    }, [any?, any?, any?]>;
    readonly STATE_ALREADY_USED: createError.FastifyErrorConstructor<{
        code: "STATE_ALREADY_USED";
        statusCode: 409;
    }, [any?, any?, any?]>;
    readonly FLOW_COOKIE_MISSING: createError.FastifyErrorConstructor<{
        code: "FLOW_COOKIE_MISSING";
        statusCode: 400;
    }, [any?, any?, any?]>;
    readonly INSTALLATION_NOT_FOUND: createError.FastifyErrorConstructor<{
        code: "INSTALLATION_NOT_FOUND";
        statusCode: 404;
    }, [any?, any?, any?]>;
    readonly INSTALLATION_STATE_CONFLICT: createError.FastifyErrorConstructor<{
        code: "INSTALLATION_STATE_CONFLICT";
        statusCode: 409;
    }, [any?, any?, any?]>;
    readonly INVALID_CURSOR: createError.FastifyErrorConstructor<{
        code: "INVALID_CURSOR";
        statusCode: 400;
    }, [any?, any?, any?]>;
    readonly REINSTALL_REQUIRED: createError.FastifyErrorConstructor<{
        code: "REINSTALL_REQUIRED";
        statusCode: 409;
    }, [any?, any?, any?]>;
    readonly NO_TOKENS: createError.FastifyErrorConstructor<{
        code: "NO_TOKENS";
        statusCode: 409;
    }, [any?, any?, any?]>;
    readonly DATABASE_UNAVAILABLE: createError.FastifyErrorConstructor<{
        code: "DATABASE_UNAVAILABLE";
        statusCode: 503;
    }, [any?, any?, any?]>;
    readonly WIX_UNAVAILABLE: createError.FastifyErrorConstructor<{
        code: "WIX_UNAVAILABLE";
        statusCode: 503;
    }, [any?, any?, any?]>;
};
