// The management API's password rule (exapg.passwords, the one `exapg config validate`
// applies to the stack's own secrets). Shown on every form that sets a password; the API
// enforces it and its one-line answer is what the form shows when a password is refused.

export const MIN_PASSWORD = 12;
export const PASSWORD_RULE =
  "At least 12 characters, at least 5 different ones, not the user name, and three of: " +
  "lower case, upper case, digits, symbols (or 20+ characters).";
