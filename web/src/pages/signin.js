// Sign-in: an API key, checked against the server, kept in this tab's sessionStorage only.

import { get, setApiKey, setSession } from '../api.js';
import { fill, h } from '../dom.js';
import { navigate } from '../router.js';
import { errorBox } from '../ui.js';

export async function signInPage({ main, query }) {
  const reason = sessionStorage.getItem('flowd.signInReason');
  sessionStorage.removeItem('flowd.signInReason');
  const input = h('input', {
    type: 'password',
    class: 'input',
    id: 'api-key',
    name: 'api-key',
    autocomplete: 'current-password',
    placeholder: 'flowd_…',
    required: true,
    autofocus: true,
  });
  const message = h('div', { class: 'signin-message' });
  const button = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Sign in');
  if (reason) {
    fill(message, errorBox({ status: 401, code: 'unauthorized', message: reason }, { title: 'Signed out: the API key was refused' }));
  }
  const form = h(
    'form',
    {
      class: 'signin-form',
      onsubmit: async (event) => {
        event.preventDefault();
        const key = input.value.trim();
        if (!key) return;
        button.disabled = true;
        button.textContent = 'Checking…';
        fill(message);
        try {
          const whoami = await get('/whoami', { key, quiet401: true });
          setApiKey(key);
          setSession(whoami);
          const next = query.get('next');
          navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/workflows', { replace: true });
        } catch (error) {
          fill(message, errorBox(error, { title: error.status === 401 ? 'This API key was refused' : 'Could not sign in' }));
          input.select();
        } finally {
          button.disabled = false;
          button.textContent = 'Sign in';
        }
      },
    },
    h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'API key'), input),
    button,
    message,
  );
  fill(
    main,
    h(
      'div',
      { class: 'signin' },
      h(
        'div',
        { class: 'signin-card' },
        h('div', { class: 'signin-brand' }, h('span', { class: 'brand-mark big' }, 'f'), h('span', null, 'flowd')),
        h('h1', null, 'Sign in'),
        h('p', { class: 'muted' }, 'Use any API key: the console shows what its role allows. The admin key is printed at the first start of flowd and written to ', h('code', null, 'flowd-data/admin-api-key'), '.'),
        form,
        h('p', { class: 'muted small' }, 'The key is kept in this browser tab only (session storage) and sent as ', h('code', null, 'Authorization: Bearer'), ' to the API.'),
      ),
    ),
  );
  input.focus();
}
