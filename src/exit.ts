// relaybox's exit codes: 2 means "fix the configuration", 1 "it ran and failed".
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_CONFIG = 2;
