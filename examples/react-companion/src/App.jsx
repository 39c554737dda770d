import {
  useAgentState, useCompanionClient, useCompanionSession, useConversation, usePresence, useSessionState, useToolRuns,
} from '@companion-ws/react';
import { ClientError } from '@companion-ws/client';
import { useState } from 'react';

const STEPS = ['details', 'quotes', 'selected', 'label'];

export function App({ joined }) {
  return (
    <main>
      <Header joined={joined} />
      <div className="grid">
        <StateCard />
        <ConversationCard />
        <PresenceCard />
      </div>
    </main>
  );
}

function Header({ joined }) {
  const { status, sessionId, role } = useCompanionSession();
  const agent = useAgentState();
  return (
    <header>
      <h1>React companion</h1>
      <span className={`status status-${status}`} data-testid="status" data-status={status}>{status}</span>
      <span data-testid="role">{role ?? '…'}{joined ? ' · joined by QR link' : ''}</span>
      <span data-testid="agent" data-state={agent?.state ?? 'none'}>agent: {agent?.state ?? 'none'}</span>
      <code data-testid="session-id">{sessionId ?? ''}</code>
    </header>
  );
}

function StateCard() {
  const client = useCompanionClient();
  const state = useSessionState();
  const step = useSessionState((s) => s.ui?.current_step ?? null);
  const version = useCompanionSession().version;
  const [problem, setProblem] = useState(null);

  async function go(next) {
    setProblem(null);
    try {
      // expectedVersion: a change another screen made first wins, and we say so.
      await client.updateState({ ui: { current_step: next } }, { expectedVersion: version });
    } catch (err) {
      setProblem(err instanceof ClientError && err.code === 'version_conflict'
        ? 'Another screen changed this first: here is what it is now.'
        : String(err.message ?? err));
    }
  }

  return (
    <section className="card">
      <h2>Session state <small>v{version}</small></h2>
      <div className="steps">
        {STEPS.map((s) => (
          <button key={s} type="button" data-testid={`step-${s}`} aria-pressed={s === step} onClick={() => go(s)}>
            {s}
          </button>
        ))}
      </div>
      <p data-testid="step">{step ?? 'no step yet'}</p>
      {problem && <p className="problem" data-testid="conflict">{problem}</p>}
      <pre data-testid="state">{JSON.stringify(state, null, 2)}</pre>
    </section>
  );
}

function ConversationCard() {
  const { messages } = useConversation();
  const tools = useToolRuns();
  return (
    <section className="card">
      <h2>Conversation</h2>
      {messages.length === 0 && <p className="muted">Nothing said yet.</p>}
      <ol className="messages" data-testid="messages">
        {messages.map((m) => (
          <li key={m.message_id} className={`message ${m.role}`} data-testid="message" data-role={m.role} data-final={m.final}>
            <b>{m.role === 'agent' ? 'Agent' : 'You'}</b> {m.text}
          </li>
        ))}
      </ol>
      {tools.length > 0 && (
        <ul className="tools" data-testid="tools">
          {tools.map((t) => (
            <li key={t.key} data-testid="tool" data-status={t.status}>
              {t.name} · {t.status}{t.duration_ms !== null ? ` · ${t.duration_ms} ms` : ''}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function PresenceCard() {
  const people = usePresence();
  const me = useCompanionSession().connectionId;
  return (
    <section className="card">
      <h2>Here now <small data-testid="presence-count">{people.length}</small></h2>
      <ul className="people">
        {people.map((m) => (
          <li key={m.connection_id} data-testid="member" data-role={m.role ?? ''}>
            {m.role ?? m.client}{m.client === 'agent' ? ' (voice agent)' : ''}{m.connection_id === me ? ' · this screen' : ''}
          </li>
        ))}
      </ul>
    </section>
  );
}
