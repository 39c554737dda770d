import { defineConfig } from 'vite';

// JSX by esbuild (no Babel plugin needed); one React even though @companion-ws/react is
// linked from ../../packages/react, which has its own React for its tests.
export default defineConfig({
  esbuild: { jsx: 'automatic' },
  resolve: { dedupe: ['react', 'react-dom'] },
  build: { sourcemap: false },
});
