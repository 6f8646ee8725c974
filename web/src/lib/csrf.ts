/** The CSRF double-submit token: the API's readable `botkiln_csrf` cookie, copied into `X-CSRF-Token`. */
export const CSRF_COOKIE = "botkiln_csrf";
export const CSRF_HEADER = "X-CSRF-Token";

/** The value of cookie `name` in a `document.cookie` string, or null. */
export function readCookie(cookies: string, name: string): string | null {
  for (const part of cookies.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      const raw = part.slice(eq + 1).trim();
      try {
        return decodeURIComponent(raw);
      } catch {
        return raw;
      }
    }
  }
  return null;
}

export function csrfToken(): string | null {
  return typeof document === "undefined" ? null : readCookie(document.cookie, CSRF_COOKIE);
}
