import { useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router";
import { useMutation, useQuery } from "urql";
import { CreateProjectMutation, ProjectsQuery } from "../api/operations";
import { ErrorBox, Empty, Loading, Notice } from "../components/ui";
import { roleLabel } from "../lib/roles";
import { when } from "../lib/format";

export function ProjectsPage() {
  const [{ data, fetching, error }] = useQuery({ query: ProjectsQuery, variables: {} });
  const [name, setName] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const [created, createProject] = useMutation(CreateProjectMutation);
  const navigate = useNavigate();

  async function submit(e: FormEvent) {
    e.preventDefault();
    setProblem(null);
    const r = await createProject({ name: name.trim() });
    const res = r.data?.createProject;
    if (res?.__typename === "ProjectCreated") {
      setName("");
      void navigate(`/projects/${res.project.id}`);
    } else if (res) {
      setProblem(res.message);
    }
  }

  const projects = data?.projects.edges.map((e) => e.node) ?? [];
  return (
    <section>
      <h1>Projects</h1>
      <ErrorBox error={error} />
      {fetching && !data ? (
        <Loading />
      ) : projects.length === 0 ? (
        <Empty>No projects yet: create one below, or ask a project owner to invite you.</Empty>
      ) : (
        <ul className="cards">
          {projects.map((p) => (
            <li key={p.id} className="card">
              <Link to={`/projects/${p.id}`} className="card-title">
                {p.name}
              </Link>
              <div className="muted small">
                {roleLabel(p.viewerRole)} · created {when(p.createdAt)}
              </div>
            </li>
          ))}
        </ul>
      )}
      <h2>New project</h2>
      <form onSubmit={(e) => void submit(e)} className="inline-form">
        <input aria-label="Project name" placeholder="Project name" required maxLength={128} value={name} onChange={(e) => setName(e.target.value)} />
        <button type="submit" disabled={created.fetching || !name.trim()}>
          Create
        </button>
      </form>
      {problem && <Notice kind="error">{problem}</Notice>}
      <ErrorBox error={created.error} />
    </section>
  );
}
