// The code editor: CodeMirror 6 with Python highlighting, line numbers, undo history,
// Tab to indent (Esc then Tab leaves the editor), and deploy errors shown at their line.

import { basicSetup } from 'codemirror';
import { EditorView, keymap } from '@codemirror/view';
import { EditorState } from '@codemirror/state';
import { indentWithTab } from '@codemirror/commands';
import { indentUnit } from '@codemirror/language';
import { python } from '@codemirror/lang-python';
import { lintGutter, setDiagnostics } from '@codemirror/lint';

const theme = EditorView.theme({
  '&': { fontSize: '13.5px', border: '1px solid var(--border)', borderRadius: '8px', background: '#fff' },
  '&.cm-focused': { outline: '2px solid var(--focus)', outlineOffset: '1px' },
  '.cm-scroller': { fontFamily: 'var(--mono)', lineHeight: '1.55' },
  '.cm-gutters': { background: '#f8fafc', borderRight: '1px solid var(--border)', borderRadius: '8px 0 0 8px' },
  '.cm-content': { minHeight: '320px' },
});

/**
 * Creates an editor in `parent`. `onChange(code)` on every edit, `onSave()` on Ctrl/Cmd-S.
 * Returns `{ view, get(), set(code), showError(line, column, message), clearError() }`.
 */
export function createEditor(parent, { doc = '', readOnly = false, onChange, onSave, maxHeight = '70vh' } = {}) {
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        basicSetup,
        python(),
        indentUnit.of('    '),
        EditorState.tabSize.of(4),
        keymap.of([
          {
            key: 'Mod-s',
            preventDefault: true,
            run: () => {
              onSave && onSave();
              return true;
            },
          },
          indentWithTab,
        ]),
        lintGutter(),
        theme,
        EditorView.theme({ '.cm-scroller': { maxHeight } }),
        EditorView.contentAttributes.of({ 'aria-label': 'Python code' }),
        EditorState.readOnly.of(readOnly),
        EditorView.editable.of(!readOnly),
        EditorView.updateListener.of((update) => {
          if (update.docChanged && onChange) onChange(update.state.doc.toString());
        }),
      ],
    }),
  });

  return {
    view,
    get: () => view.state.doc.toString(),
    set(code) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: code } });
    },
    /** Marks `line`:`column` (1-based) with `message`, and moves the cursor there. */
    showError(line, column, message) {
      const doc = view.state.doc;
      const lineNumber = Math.min(Math.max(line || 1, 1), doc.lines);
      const target = doc.line(lineNumber);
      const from = target.from + Math.min(Math.max((column || 1) - 1, 0), target.length);
      // Underline from the column to the end of the line; a column past the line's last
      // character (a missing ':') is marked as a point there.
      const to = target.to;
      view.dispatch(
        setDiagnostics(view.state, [{ from, to, severity: 'error', message, source: 'deploy' }]),
        { selection: { anchor: from }, scrollIntoView: true },
      );
    },
    clearError() {
      view.dispatch(setDiagnostics(view.state, []));
    },
  };
}
