// Create workflow: Catch or Pull, a name, (pull) a schedule; the code starts from a template.

import { get, post } from '../api.js';
import { fill, h } from '../dom.js';
import { navigate } from '../router.js';
import { scheduleEditor } from '../schedule.js';
import { signature, template } from '../templates.js';
import { card, errorBox, pageHeader } from '../ui.js';

export async function createPage(ctx) {
  const { main, query } = ctx;
  let mode = query.get('mode') === 'pull' ? 'pull' : 'catch';
  const choice = (value, title, text) =>
    h(
      'label',
      { class: 'choice' },
      h('input', { type: 'radio', name: 'mode', value, checked: mode === value, onchange: () => setMode(value) }),
      h('span', { class: 'choice-body' }, h('span', { class: 'choice-title' }, title), h('span', { class: 'choice-text' }, text)),
    );
  const name = h('input', {
    class: 'input',
    id: 'workflow-name',
    name: 'name',
    required: true,
    maxlength: 64,
    pattern: '[A-Za-z0-9][A-Za-z0-9_.\\-]*',
    placeholder: mode === 'pull' ? 'sync-candidates' : 'new-application',
    autocomplete: 'off',
    spellcheck: false,
  });
  const schedule = scheduleEditor(null);
  const scheduleCard = card('Schedule', h('p', { class: 'muted' }, 'When the workflow runs. Runs never overlap: a tick that comes while the previous run is going is skipped.'), schedule.el);
  const sig = h('code', null);
  const message = h('div');
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create workflow');

  function setMode(value) {
    mode = value;
    scheduleCard.hidden = mode !== 'pull';
    sig.textContent = signature(mode);
    name.placeholder = mode === 'pull' ? 'sync-candidates' : 'new-application';
  }

  const form = h(
    'form',
    {
      class: 'create-form',
      onsubmit: async (event) => {
        event.preventDefault();
        fill(message);
        submit.disabled = true;
        try {
          const body = { name: name.value.trim(), mode, code: template(mode) };
          if (mode === 'pull') body.schedule = schedule.value();
          const created = await post('/workflows', body);
          navigate(`/workflows/${created.id}`);
        } catch (error) {
          fill(message, errorBox(error, { title: 'The workflow was not created' }));
        } finally {
          submit.disabled = false;
        }
      },
    },
    card(
      'Trigger',
      h('div', { class: 'choices' }, choice('catch', 'Catch', 'Runs on every call of its hook URL: a webhook for your ATS, your forms, any service that can POST.'), choice('pull', 'Pull', 'Runs on a schedule, every few minutes or at cron times: to fetch and sync data.')),
    ),
    card(
      'Name',
      h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Workflow name'), name, h('span', { class: 'field-hint' }, 'Letters, digits, “_”, “.” and “-”, up to 64 characters. It is part of the hook URL.')),
    ),
    scheduleCard,
    card(null, h('p', { class: 'muted' }, 'The code starts from a working template, ', sig, ', that you edit on the next page.'), message, h('div', { class: 'form-actions' }, submit, h('a', { href: '/workflows', class: 'btn btn-ghost' }, 'Cancel'))),
  );
  setMode(mode);
  fill(main, pageHeader('Create workflow', { crumbs: [h('a', { href: '/workflows' }, 'Workflows')] }), form);
  name.focus();
  // Says which runtime the workflow will get.
  get('/runtimes')
    .then((answer) => {
      const runtime = answer.runtimes.find((r) => r.default) ?? answer.runtimes[0];
      if (runtime && ctx.alive()) sig.after(` (runtime ${runtime.name}, Python ${runtime.version})`);
    })
    .catch(() => {});
}
