import { BrowserRouter, Route, Routes } from "react-router";
import { AuthProvider } from "./lib/auth";
import { NotFoundPage, RequireAuth, Shell } from "./components/Layout";
import { SignInPage, SignUpPage } from "./pages/AuthPages";
import { ProjectsPage } from "./pages/ProjectsPage";
import { ProjectPage } from "./pages/ProjectPage";
import { BotLayout } from "./pages/BotLayout";
import { BotOverview } from "./pages/BotOverview";
import { ComingSoon } from "./pages/Placeholders";

export function App() {
  return (
    <AuthProvider>
      <BrowserRouter>
        <Routes>
          <Route element={<Shell />}>
            <Route path="signin" element={<SignInPage />} />
            <Route path="signup" element={<SignUpPage />} />
            <Route element={<RequireAuth />}>
              <Route index element={<ProjectsPage />} />
              <Route path="projects/:projectId" element={<ProjectPage />} />
              <Route path="bots/:botId" element={<BotLayout />}>
                <Route index element={<BotOverview />} />
                <Route path="spec" element={<ComingSoon title="Spec editor" operations={["saveSpecVersion"]} />} />
                <Route path="versions" element={<ComingSoon title="Versions" operations={["specVersions"]} />} />
                <Route path="deploy" element={<ComingSoon title="Generate & deploy" operations={["generate"]} />} />
                <Route path="analytics" element={<ComingSoon title="Analytics" operations={["analytics"]} />} />
                {/* Chat simulator and dead letters: built when `simulate` and `deadLetters` land in the schema. */}
                <Route path="simulator" element={<ComingSoon title="Chat simulator" operations={["simulate"]} />} />
                <Route path="dead-letters" element={<ComingSoon title="Dead letters" operations={["deadLetters", "replayDeadLetters", "dropDeadLetters"]} />} />
              </Route>
            </Route>
            <Route path="*" element={<NotFoundPage />} />
          </Route>
        </Routes>
      </BrowserRouter>
    </AuthProvider>
  );
}
