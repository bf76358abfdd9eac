/** bull-board's view of the datum queue, as an express router mounted by the HTTP server. */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Router } from 'express';
import type { DatumQueue } from './datum-queue.js';

export function queueDashboard(queue: DatumQueue, basePath: string): Router {
  const board = new ExpressAdapter();
  board.setBasePath(basePath);
  createBullBoard({ queues: [new BullMQAdapter(queue.queue)], serverAdapter: board });
  return board.getRouter() as Router;
}
