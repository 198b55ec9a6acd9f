/** The errors of the vhost-user backend model and of its child-process helper. */
import { IxyError } from "../../errors.ts";

/**
 * The front-end broke the vhost-user protocol: a request the backend refuses (unknown, malformed,
 * out of order, or naming memory outside the table). The backend records it as a violation and
 * answers with a failure ack, or closes the connection when it cannot (no REPLY_ACK).
 */
export class FrontEndViolation extends IxyError {
  override name = "FrontEndViolation";
}

/** The backend child process did not start, did not answer in time, or died. */
export class BackendProcessError extends IxyError {
  override name = "BackendProcessError";
}
