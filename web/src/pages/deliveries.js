// The Hook tab's "Signed and repeated deliveries" card: the workflow's `verify` (which scheme its
// callers sign with, and the setting holding the secret) and its `idempotency_header`
// (CONTRACT.md §2 "Signed deliveries", "Idempotent deliveries"), and whether its requests are
// stored for replay (`store_requests`, §2 "Stored requests and replay").

import { patch } from '../api.js';
import { fill, h } from '../dom.js';
import { card, field, notice, toast } from '../ui.js';

const SCHEMES = [
  ['', 'Not checked'],
  ['github', 'GitHub (X-Hub-Signature-256)'],
  ['stripe', 'Stripe (Stripe-Signature)'],
  ['slack', 'Slack (X-Slack-Signature)'],
  ['standard-webhooks', 'Standard Webhooks (webhook-signature)'],
  ['hmac', 'HMAC in a header (Greenhouse, Workable, …)'],
];
const TIMESTAMPED = ['stripe', 'slack', 'standard-webhooks'];

function select(id, label, options, value) {
  return h(
    'select',
    { class: 'input', id, 'aria-label': label },
    options.map(([v, text]) => h('option', { value: v, selected: v === value }, text)),
  );
}

function input(id, label, value, placeholder) {
  return h('input', { class: 'input mono', id, 'aria-label': label, value: value ?? '', placeholder: placeholder ?? '' });
}

/** The card, editing `page.workflow` and saving with one PATCH. */
export function deliveriesCard(page) {
  const verify = page.workflow.verify ?? {};
  const scheme = select('verify-scheme', 'Signature scheme', SCHEMES, verify.scheme ?? '');
  const secret = input('verify-secret', 'Settings key holding the secret', verify.secret, 'GITHUB_SECRET');
  const tolerance = input('verify-tolerance', 'Timestamp tolerance in seconds', verify.tolerance_s ?? 300);
  const header = input('verify-header', 'Signature header', verify.header, 'Signature');
  const algorithm = select('verify-algorithm', 'HMAC algorithm', [['sha256', 'SHA-256'], ['sha1', 'SHA-1']], verify.algorithm ?? 'sha256');
  const encoding = select('verify-encoding', 'Signature encoding', [['hex', 'hex'], ['base64', 'base64']], verify.encoding ?? 'hex');
  const prefix = input('verify-prefix', 'Signature prefix', verify.prefix, 'sha256=');
  const keyHeader = input('idempotency-header', 'Idempotency header', page.workflow.idempotency_header, 'Idempotency-Key');
  const storeRequests = h('input', { type: 'checkbox', id: 'store-requests', checked: page.workflow.store_requests !== false });
  const options = h('div');
  const message = h('div');
  const save = h('button', { type: 'button', class: 'btn btn-primary needs-developer', id: 'save-deliveries' }, 'Save');

  const drawOptions = () => {
    const chosen = scheme.value;
    fill(
      options,
      chosen ? field('Settings key holding the secret', secret, 'Mark it secret under Function › Environment Properties; a list of strings holds several while a secret is rotated.') : null,
      TIMESTAMPED.includes(chosen) ? field('Timestamp tolerance (s)', tolerance, 'Older or newer signatures are refused (replay protection).') : null,
      chosen === 'hmac' ? [field('Signature header', header), field('Algorithm', algorithm), field('Encoding', encoding), field('Prefix', prefix, 'Text before the signature in the header, if any.')] : null,
    );
  };
  scheme.addEventListener('change', drawOptions);
  drawOptions();

  const verifyValue = () => {
    const chosen = scheme.value;
    if (!chosen) return null;
    const value = { scheme: chosen, secret: secret.value.trim() };
    if (TIMESTAMPED.includes(chosen)) value.tolerance_s = Number(tolerance.value);
    if (chosen === 'hmac') {
      value.header = header.value.trim();
      value.algorithm = algorithm.value;
      value.encoding = encoding.value;
      if (prefix.value) value.prefix = prefix.value;
    }
    return value;
  };

  save.addEventListener('click', async () => {
    save.disabled = true;
    try {
      const body = { verify: verifyValue(), idempotency_header: keyHeader.value.trim() || null, store_requests: storeRequests.checked };
      page.setWorkflow(await patch(`/workflows/${page.workflow.id}`, body));
      fill(message);
      toast('Delivery settings saved');
    } catch (error) {
      fill(message, notice('error', `${error.code}: ${error.message}`));
    } finally {
      save.disabled = false;
    }
  });

  return card(
    'Signed and repeated deliveries',
    h('p', { class: 'muted small' }, 'Check the signature the calling service puts on each call before the workflow runs: a missing, wrong or stale signature is answered 401 and recorded as skipped.'),
    field('Signature scheme', scheme),
    options,
    field('Delivery id header', keyHeader, 'A call repeating the value of this header (default Idempotency-Key) within 24 h gets the first response instead of running again.'),
    field(
      'Store requests for replay',
      h('label', { class: 'checkbox' }, storeRequests, ' Keep each call’s request with its execution'),
      'Untick for data that must not be kept: its executions cannot be replayed.',
    ),
    message,
    h('div', { class: 'form-actions' }, save),
  );
}
