// Client-side checks that mirror the server's rules (docs/control-plane.md), so most mistakes
// are shown next to the field before a round trip. The server still validates everything.

/** Project ids name warehouse schemas: lowercase letters, digits, `_`, starting with a letter. */
export function projectIdError(id) {
  if (!id) return 'Enter an id.';
  if (id.length > 127) return 'At most 127 characters.';
  if (!/^[a-z][a-z0-9_]*$/.test(id)) return 'Use lowercase letters, digits and _, starting with a letter.';
  return null;
}

/** App ids are the SDK's appId: letters, digits, `_`, starting with a letter. */
export function appIdError(id) {
  if (!id) return 'Enter an id.';
  if (id.length > 127) return 'At most 127 characters.';
  if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(id)) return 'Use letters, digits, _ and -, starting with a letter.';
  return null;
}

/** Plugin ids: the contract sets no pattern, but an id goes into URL paths. */
export function pluginIdError(id) {
  if (!id) return 'Enter an id.';
  if (/[\s/?#%]/.test(id)) return 'No spaces, /, ?, # or %.';
  return null;
}

/** A whole number greater than 0 (and at least `min` when given). */
export function positiveIntegerError(text, min = 1) {
  const value = String(text ?? '').trim();
  if (!/^\d+$/.test(value)) return min > 1 ? `Enter a whole number of at least ${min}.` : 'Enter a whole number greater than 0.';
  if (Number(value) < Math.max(1, min)) return min > 1 ? `Must be at least ${min}.` : 'Must be greater than 0.';
  return null;
}

/** A whole number, 0 allowed (e.g. no buffering). */
export function nonNegativeIntegerError(text) {
  return /^\d+$/.test(String(text ?? '').trim()) ? null : 'Enter a whole number (0 or more).';
}

/** A 5-field cron expression (minute hour day-of-month month day-of-week). */
export function cronError(text) {
  const fields = String(text ?? '').trim().split(/\s+/).filter(Boolean);
  if (fields.length !== 5) return `A cron expression has 5 fields (minute hour day month weekday); this one has ${fields.length}.`;
  return null;
}

/** An IANA time zone name the browser knows (the server has the final word). */
export function timezoneError(name) {
  if (!name) return 'Enter a time zone, e.g. Asia/Shanghai.';
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return null;
  } catch {
    return 'Not a known IANA time zone name.';
  }
}
