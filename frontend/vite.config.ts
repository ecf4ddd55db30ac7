// The management UI. `npm run dev` serves it on MGMT_FRONTEND_PORT and forwards /api to
// the backend on MGMT_BACKEND_PORT; `npm run build` writes dist/, which the backend
// serves at / in local mode.
import { defineConfig } from "vite";

const backend = `http://127.0.0.1:${process.env.MGMT_BACKEND_PORT ?? "8000"}`;

export default defineConfig({
  envPrefix: ["VITE_", "REACT_APP_"],
  esbuild: { jsx: "automatic" },
  server: {
    port: Number(process.env.MGMT_FRONTEND_PORT ?? 3001),
    strictPort: true,
    proxy: { "/api": { target: backend, changeOrigin: false } },
  },
  build: { outDir: "dist", sourcemap: false, chunkSizeWarningLimit: 600 },
});
