// Executions of every workflow, live.

import { fill } from '../dom.js';
import { liveExecutions } from '../live.js';
import { pageHeader } from '../ui.js';

export async function executionsPage(ctx) {
  fill(
    ctx.main,
    pageHeader('Executions'),
    liveExecutions(ctx, { base: '/executions', withWorkflow: true, empty: 'No executions yet.' }),
  );
}
