"""Projects and members: ``projects``/``project`` queries; ``createProject``,
``inviteMember``, ``setMemberRole``, ``removeMember`` mutations.

Any signed-in user may create a project and becomes its owner. Only owners manage
members. Inviting adds an existing account by email with a role (there is no
e-mail delivery: the person signs up first). A project always keeps an owner:
demoting or removing the last one is ``LastOwner``.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated
from uuid import UUID

import strawberry
from strawberry.types import Info

from botkiln.graphql.auth import User
from botkiln.graphql.connections import Connection, offset_connection
from botkiln.graphql.context import Context
from botkiln.graphql.permissions import CanOwnProject, CanViewProject, IsSignedIn
from botkiln.graphql.results import InvalidInput, NotFound, Problem, invalid, not_found
from botkiln.infra.db import audit, projects, users


@strawberry.enum(description="A member's role; each includes what the ones before it may do.")
class Role(Enum):
    VIEWER = "viewer"
    EDITOR = "editor"
    OWNER = "owner"


@strawberry.type(description="A member of a project.")
class Member:
    role: Role
    added_at: datetime
    user_id: strawberry.Private[UUID]

    @strawberry.field
    async def user(self, info: Info[Context, None]) -> User | None:
        found = await users.get_user(info.context.services.db, self.user_id)
        return None if found is None else User.from_row(found)

    @classmethod
    def from_row(cls, member: projects.Member) -> Member:
        """The GraphQL form of a stored membership."""
        return cls(role=Role(member.role), added_at=member.added_at, user_id=member.user_id)


@strawberry.type(description="A project: the unit of ownership of bots.")
class Project:
    id: strawberry.ID
    name: str
    created_at: datetime
    viewer_role: Role | None = strawberry.field(description="Your role in this project.")

    @strawberry.field(description="Everyone in the project, in the order they joined.")
    async def members(self, info: Info[Context, None]) -> list[Member]:
        rows = await projects.list_members(info.context.services.db, UUID(self.id))
        return [Member.from_row(m) for m in rows]

    @classmethod
    def from_row(cls, project: projects.Project, role: projects.Role | None) -> Project:
        """The GraphQL form of a stored project as a member with ``role`` sees it."""
        return cls(
            id=strawberry.ID(str(project.id)),
            name=project.name,
            created_at=project.created_at,
            viewer_role=None if role is None else Role(role),
        )


@strawberry.type(description="The project was created; you are its owner.")
class ProjectCreated:
    project: Project


@strawberry.type(description="The member now has this role.")
class MemberSet:
    member: Member


@strawberry.type(description="The member was removed.")
class MemberRemoved:
    user_id: strawberry.ID


@strawberry.type(description="The change would leave the project without an owner.")
class LastOwner(Problem):
    pass


CreateProjectResult = Annotated[ProjectCreated | InvalidInput, strawberry.union("CreateProjectResult")]
MemberResult = Annotated[MemberSet | NotFound | LastOwner | InvalidInput, strawberry.union("MemberResult")]
RemoveMemberResult = Annotated[MemberRemoved | NotFound | LastOwner, strawberry.union("RemoveMemberResult")]

_LAST_OWNER = "a project needs at least one owner; make someone else owner first"


def _uuid(value: strawberry.ID) -> UUID | None:
    try:
        return UUID(str(value))
    except ValueError:
        return None


@strawberry.type
class ProjectQuery:
    @strawberry.field(permission_classes=[IsSignedIn], description="Your projects, oldest first.")
    async def projects(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> Connection[Project]:
        user_id = info.context.user_id
        assert user_id is not None
        rows = await projects.list_projects(info.context.services.db, user_id)
        return offset_connection(rows, first, after, "projects", lambda a: Project.from_row(a.project, a.role))

    @strawberry.field(permission_classes=[CanViewProject])
    async def project(self, info: Info[Context, None], project_id: strawberry.ID) -> Project | None:
        project_uuid = UUID(str(project_id))
        found = await projects.get_project(info.context.services.db, project_uuid)
        role = await info.context.project_role(project_uuid)
        return None if found is None else Project.from_row(found, role)


@strawberry.type
class ProjectMutation:
    @strawberry.mutation(permission_classes=[IsSignedIn], description="Create a project owned by you.")
    async def create_project(self, info: Info[Context, None], name: str) -> CreateProjectResult:
        name = name.strip()
        if not 1 <= len(name) <= 128:
            return invalid("name", "a name of 1 to 128 characters is needed")
        user_id = info.context.user_id
        assert user_id is not None
        db = info.context.services.db
        project = await projects.create_project(db, name=name, owner_id=user_id)
        await audit.record(db, action="project.create", actor_id=user_id, project_id=project.id, detail={"name": name})
        info.context.forget_roles()
        return ProjectCreated(project=Project.from_row(project, "owner"))

    @strawberry.mutation(permission_classes=[CanOwnProject], description="Add an existing account with a role.")
    async def invite_member(
        self, info: Info[Context, None], project_id: strawberry.ID, email: str, role: Role
    ) -> MemberResult:
        db = info.context.services.db
        user = await users.find_user(db, email)
        if user is None:
            return not_found(f"an account with the email {email!r}")
        return await _set_role(info.context, UUID(str(project_id)), user.id, role, action="member.invite")

    @strawberry.mutation(permission_classes=[CanOwnProject], description="Change a member's role.")
    async def set_member_role(
        self, info: Info[Context, None], project_id: strawberry.ID, user_id: strawberry.ID, role: Role
    ) -> MemberResult:
        project_uuid, member_id = UUID(str(project_id)), _uuid(user_id)
        db = info.context.services.db
        if member_id is None:
            return invalid("userId", "not a user id")
        if await projects.role_of(db, project_uuid, member_id) is None:
            return not_found("that member")
        return await _set_role(info.context, project_uuid, member_id, role, action="member.role")

    @strawberry.mutation(permission_classes=[CanOwnProject], description="Remove a member.")
    async def remove_member(
        self, info: Info[Context, None], project_id: strawberry.ID, user_id: strawberry.ID
    ) -> RemoveMemberResult:
        project_uuid, member_id = UUID(str(project_id)), _uuid(user_id)
        if member_id is None:
            return not_found("that member")
        db = info.context.services.db
        removed = await projects.remove_member(db, project_id=project_uuid, user_id=member_id)
        if isinstance(removed, projects.LastOwner):
            return LastOwner(message=_LAST_OWNER)
        if not removed:
            return not_found("that member")
        await audit.record(
            db, action="member.remove", actor_id=info.context.user_id, project_id=project_uuid, target=str(member_id)
        )
        info.context.forget_roles()
        return MemberRemoved(user_id=strawberry.ID(str(member_id)))


async def _set_role(context: Context, project_id: UUID, user_id: UUID, role: Role, *, action: str) -> MemberResult:
    db = context.services.db
    result = await projects.set_member_role(
        db, project_id=project_id, user_id=user_id, role=role.value, added_by=context.user_id
    )
    if isinstance(result, projects.LastOwner):
        return LastOwner(message=_LAST_OWNER)
    await audit.record(
        db,
        action=action,
        actor_id=context.user_id,
        project_id=project_id,
        target=str(user_id),
        detail={"role": role.value},
    )
    context.forget_roles()
    return MemberSet(member=Member.from_row(result))
