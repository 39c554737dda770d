// errors.ts: the client's errors, as the Python client's (companion_ws/client/errors.py).
//
//   Error
//   ├── ClientError       an `error` frame answered a request (code: the hub's, e.g.
//   │                     version_conflict, forbidden, timeout)
//   └── ConnectionLost    the connection dropped after the frame was sent, before its
//       │                 reply: nothing is resent; retry if it is safe
//       └── ClientClosed  the client has stopped for good (code: the close code)
//
// Waits that time out or are aborted reject with the signal's reason (a DOMException
// named TimeoutError or AbortError), as fetch() does.
export class ClientError extends Error {
    frame;
    code;
    name = 'ClientError';
    constructor(frame) {
        const code = typeof frame.code === 'string' ? frame.code : 'internal';
        const message = typeof frame.message === 'string' ? frame.message : '';
        super(`${code}: ${message}`);
        this.frame = frame;
        this.code = code;
    }
}
export class ConnectionLost extends Error {
    name = 'ConnectionLost';
    constructor(message = 'the connection dropped before the reply; retry') {
        super(message);
    }
}
export class ClientClosed extends ConnectionLost {
    code;
    reason;
    error;
    name = 'ClientClosed';
    constructor(code, reason, error = null) {
        super(reason ? `closed (${code}): ${reason}` : `closed (${code})`);
        this.code = code;
        this.reason = reason;
        this.error = error;
    }
}
/** The reason an AbortSignal carries, or a TimeoutError after `ms`. */
export function timeoutError(ms) {
    return new DOMException(`no answer within ${ms} ms`, 'TimeoutError');
}
