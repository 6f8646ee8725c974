import { lazy, Suspense, type ReactNode } from "react";
import { createBrowserRouter, createRoutesFromElements, Route } from "react-router";
import { RouterProvider } from "react-router/dom";
import { AuthProvider } from "./lib/auth";
import { NotFoundPage, RequireAuth, Shell } from "./components/Layout";
import { SignInPage, SignUpPage } from "./pages/AuthPages";
import { ProjectsPage } from "./pages/ProjectsPage";
import { ProjectPage } from "./pages/ProjectPage";
import { BotLayout } from "./pages/BotLayout";
import { BotOverview } from "./pages/BotOverview";
import { DeployPage } from "./pages/DeployPage";
import { SecretsPage } from "./pages/SecretsPage";
import { Loading } from "./components/ui";

// The editor (CodeMirror, its JSON Schema support, React Flow, dagre) and the charts are the
// heavy parts: their pages load on first visit, not with the shell.
const SpecPage = lazy(() => import("./pages/SpecPage").then((m) => ({ default: m.SpecPage })));
const VersionsPage = lazy(() => import("./pages/VersionsPage").then((m) => ({ default: m.VersionsPage })));
const AnalyticsPage = lazy(() => import("./pages/AnalyticsPage").then((m) => ({ default: m.AnalyticsPage })));
const SimulatorPage = lazy(() => import("./pages/SimulatorPage").then((m) => ({ default: m.SimulatorPage })));
const DeadLettersPage = lazy(() => import("./pages/DeadLettersPage").then((m) => ({ default: m.DeadLettersPage })));

const page = (element: ReactNode) => <Suspense fallback={<Loading />}>{element}</Suspense>;

// A data router (not <BrowserRouter>): the spec editor holds navigation away from unsaved
// edits with useBlocker, which only a data router offers. The routes need no loaders or actions.
const router = createBrowserRouter(
  createRoutesFromElements(
    <Route element={<Shell />}>
      <Route path="signin" element={<SignInPage />} />
      <Route path="signup" element={<SignUpPage />} />
      <Route element={<RequireAuth />}>
        <Route index element={<ProjectsPage />} />
        <Route path="projects/:projectId" element={<ProjectPage />} />
        <Route path="bots/:botId" element={<BotLayout />}>
          <Route index element={<BotOverview />} />
          <Route path="spec" element={page(<SpecPage />)} />
          <Route path="versions" element={page(<VersionsPage />)} />
          <Route path="deploy" element={<DeployPage />} />
          <Route path="secrets" element={<SecretsPage />} />
          <Route path="analytics" element={page(<AnalyticsPage />)} />
          <Route path="simulator" element={page(<SimulatorPage />)} />
          <Route path="dead-letters" element={page(<DeadLettersPage />)} />
        </Route>
      </Route>
      <Route path="*" element={<NotFoundPage />} />
    </Route>,
  ),
);

export function App() {
  return (
    <AuthProvider>
      <RouterProvider router={router} />
    </AuthProvider>
  );
}
