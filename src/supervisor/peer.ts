// Who is at the other end of a control-socket connection (docs/control.md:
// the daemon checks each connection's peer credentials when it connects).

import type { Socket } from 'node:net';
import { native } from '../native.js';
import { OtusError } from '../util/errors.js';

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/**
 * SO_PEERCRED of an accepted Unix stream socket: the peer's pid, uid and primary
 * gid as they were when it connected. Throws OTUS_ERR_SYSCALL when the socket has
 * no file descriptor (closed, or not a Unix socket) or the kernel refuses.
 */
export function peerCredentials(sock: Socket): PeerCredentials {
  // libuv's pipe handle exposes its fd; Node has no public API for it.
  const fd = (sock as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new OtusError('OTUS_ERR_SYSCALL', 'peer credentials: the connection has no file descriptor (closed, or not a Unix socket)');
  }
  try {
    const [pid, uid, gid] = native.peerCred(fd);
    return { pid, uid, gid };
  } catch (err) {
    throw new OtusError('OTUS_ERR_SYSCALL', `peer credentials: ${(err as Error).message}`, { cause: err });
  }
}
