// The HTTP surface's paths: one source of truth for the server, the image's healthcheck and the
// Kubernetes manifests' probes (a test checks the manifests against these).
export const ROUTES = {
  health: '/health',
  ready: '/ready',
  metrics: '/metrics',
  selftest: '/selftest',
} as const;
