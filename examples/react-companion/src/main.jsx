import { CompanionClient } from '@companion-ws/client';
import { CompanionProvider } from '@companion-ws/react';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';

import { App } from './App.jsx';
import { connection } from './link.js';

const where = connection(window.location.search);
const root = createRoot(document.getElementById('root'));

if (where.error) {
  root.render(<p className="problem" data-testid="problem">{where.error}</p>);
} else {
  // Forget the one-time token in the address bar: a reload reconnects with the
  // client's reconnect token, never with a spent join token.
  window.history.replaceState(null, '', window.location.pathname);
  const client = new CompanionClient(where.hub, { token: where.token, sessionId: where.sessionId, client: 'ui' });
  window.companionClient = client; // for the curious, and the end-to-end test
  root.render(
    <StrictMode>
      <CompanionProvider client={client}>
        <App joined={where.joined} />
      </CompanionProvider>
    </StrictMode>,
  );
}
