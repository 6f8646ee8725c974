/**
 * A guard against leaving a page with unsaved work.
 *
 * In-app navigation (links, tabs, the browser's back and forward buttons) is held with the
 * router's blocker (`useBlocker`, which needs the data router `App` creates) and the page shows
 * `LeaveConfirm`: Leave goes on, Stay cancels the navigation. A navigation that keeps this page
 * (the same path and query, e.g. only a `#hash`) is not held. Leaving the document itself (reload,
 * closing the tab, another address) gets the browser's own `beforeunload` prompt; the handler is
 * registered only while there is something to lose, so a clean page unloads without a question
 * (and stays eligible for the back/forward cache).
 */
import { useCallback, useEffect, useRef, type ReactNode } from "react";
import { useBlocker, type Blocker, type BlockerFunction } from "react-router";

export interface LeaveGuard {
  blocker: Blocker;
  /** Go on with the held navigation (after `beforeLeave`). */
  leave(): void;
  /** Cancel the held navigation. */
  stay(): void;
  /** Let the next navigation through without asking (the user already chose to discard, e.g. "reload"). */
  release(): void;
}

/**
 * Hold navigation away from the page while `active`.
 * `beforeLeave` runs when the user may be leaving with the work unsaved: before a confirmed in-app
 * navigation and on `beforeunload` (keep it quick and synchronous, e.g. write a draft to storage).
 */
export function useLeaveGuard(active: boolean, beforeLeave?: () => void): LeaveGuard {
  const released = useRef(false);
  const before = useRef(beforeLeave);
  useEffect(() => {
    before.current = beforeLeave;
  }, [beforeLeave]);

  const shouldBlock = useCallback<BlockerFunction>(
    ({ currentLocation, nextLocation }) => {
      if (released.current) {
        released.current = false;
        return false;
      }
      return active && (currentLocation.pathname !== nextLocation.pathname || currentLocation.search !== nextLocation.search);
    },
    [active],
  );
  const blocker = useBlocker(shouldBlock);

  // saved (or discarded) while the question was up: nothing to ask about any more
  useEffect(() => {
    if (blocker.state === "blocked" && !active) blocker.reset();
  }, [blocker, active]);

  useEffect(() => {
    if (!active) return;
    const warn = (e: BeforeUnloadEvent) => {
      before.current?.();
      e.preventDefault();
      // older browsers (Chrome/Edge before 119) prompt only when returnValue is set
      e.returnValue = true;
    };
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [active]);

  const release = useCallback(() => {
    released.current = true;
    // a release is for a navigation started right away (synchronously); never for a later one
    queueMicrotask(() => {
      released.current = false;
    });
  }, []);

  const leave = useCallback(() => {
    if (blocker.state !== "blocked") return;
    before.current?.();
    blocker.proceed();
  }, [blocker]);
  const stay = useCallback(() => {
    if (blocker.state === "blocked") blocker.reset();
  }, [blocker]);

  return { blocker, leave, stay, release };
}

/** The question while a navigation is held: Leave, or Stay (focused; Escape too). */
export function LeaveConfirm({ guard, children }: { guard: LeaveGuard; children: ReactNode }) {
  const stay = useRef<HTMLButtonElement>(null);
  const blocked = guard.blocker.state === "blocked";
  useEffect(() => {
    // focusing also scrolls the question into view (the back button may come from far down the page)
    if (blocked) stay.current?.focus();
  }, [blocked]);
  if (!blocked) return null;
  return (
    <div
      className="notice warn"
      role="alertdialog"
      aria-label="Unsaved changes"
      aria-describedby="leave-guard-text"
      onKeyDown={(e) => {
        if (e.key === "Escape") guard.stay();
      }}
    >
      <span id="leave-guard-text">{children}</span>
      <div className="row" style={{ marginTop: "0.4rem" }}>
        <button className="danger" onClick={guard.leave}>
          Leave
        </button>
        <button className="secondary" ref={stay} onClick={guard.stay}>
          Stay
        </button>
      </div>
    </div>
  );
}
