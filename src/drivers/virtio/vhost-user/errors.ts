/** The errors only the vhost-user transport throws. */
import { DeviceProtocolError, IxyError } from "../../../errors.ts";

/** Nothing listened on the socket path (ENOENT, ECONNREFUSED) for as long as open waited. */
export class VhostUserBackendNotFoundError extends IxyError {
  override name = "VhostUserBackendNotFoundError";
  readonly path: string;
  constructor(message: string, path: string) {
    super(message);
    this.path = path;
  }
}

/**
 * The backend closed the connection (it refused a request, or it died). The connection cannot be
 * resumed: close the device and open it again once the backend runs.
 */
export class VhostUserDisconnectedError extends DeviceProtocolError {
  override name = "VhostUserDisconnectedError";
}
