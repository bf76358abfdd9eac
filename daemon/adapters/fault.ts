/**
 * Fault injection for crash tests. `MINIPACH_FAULT=<point>` makes the process kill itself with SIGKILL when it
 * reaches that point, as a power cut or an OOM kill would; unset (always, outside tests) it does nothing.
 */
export async function faultPoint(point: string): Promise<void> {
  if (process.env['MINIPACH_FAULT'] === point) process.kill(process.pid, 'SIGKILL');
}
