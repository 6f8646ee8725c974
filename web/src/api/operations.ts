/**
 * Every GraphQL operation the console sends. Types come from `npm run codegen`
 * (GraphQL Code Generator, client preset) into src/gql/, checked against graphql/schema.graphql.
 */
import { graphql } from "../gql";

export const ViewerQuery = graphql(`
  query Viewer {
    viewer {
      id
      email
      displayName
    }
  }
`);

export const SignUpMutation = graphql(`
  mutation SignUp($email: String!, $password: String!, $displayName: String!) {
    signUp(email: $email, password: $password, displayName: $displayName) {
      __typename
      ... on SignedIn {
        viewer {
          id
          email
          displayName
        }
      }
      ... on Problem {
        message
      }
      ... on InvalidInput {
        field
      }
    }
  }
`);

export const SignInMutation = graphql(`
  mutation SignIn($email: String!, $password: String!) {
    signIn(email: $email, password: $password) {
      __typename
      ... on SignedIn {
        viewer {
          id
          email
          displayName
        }
      }
      ... on Problem {
        message
      }
      ... on RateLimited {
        retryAfterSeconds
      }
      ... on InvalidInput {
        field
      }
    }
  }
`);

export const SignOutMutation = graphql(`
  mutation SignOut {
    signOut {
      ok
    }
  }
`);

export const ProjectsQuery = graphql(`
  query Projects($after: String) {
    projects(first: 100, after: $after) {
      edges {
        node {
          id
          name
          createdAt
          viewerRole
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const CreateProjectMutation = graphql(`
  mutation CreateProject($name: String!) {
    createProject(name: $name) {
      __typename
      ... on ProjectCreated {
        project {
          id
          name
        }
      }
      ... on Problem {
        message
      }
    }
  }
`);

export const ProjectQuery = graphql(`
  query Project($projectId: ID!) {
    project(projectId: $projectId) {
      id
      name
      createdAt
      viewerRole
      members {
        role
        addedAt
        user {
          id
          email
          displayName
        }
      }
    }
  }
`);


export const InviteMemberMutation = graphql(`
  mutation InviteMember($projectId: ID!, $email: String!, $role: Role!) {
    inviteMember(projectId: $projectId, email: $email, role: $role) {
      __typename
      ... on MemberSet {
        member {
          role
          user {
            id
          }
        }
      }
      ... on Problem {
        message
      }
    }
  }
`);

export const SetMemberRoleMutation = graphql(`
  mutation SetMemberRole($projectId: ID!, $userId: ID!, $role: Role!) {
    setMemberRole(projectId: $projectId, userId: $userId, role: $role) {
      __typename
      ... on MemberSet {
        member {
          role
          user {
            id
          }
        }
      }
      ... on Problem {
        message
      }
    }
  }
`);

export const RemoveMemberMutation = graphql(`
  mutation RemoveMember($projectId: ID!, $userId: ID!) {
    removeMember(projectId: $projectId, userId: $userId) {
      __typename
      ... on MemberRemoved {
        userId
      }
      ... on Problem {
        message
      }
    }
  }
`);

export const BotsQuery = graphql(`
  query Bots($projectId: ID!, $after: String) {
    bots(projectId: $projectId, first: 100, after: $after) {
      edges {
        node {
          id
          name
          telegramUsername
          activeRevHash
          activeSince
          latestSpecVersion
          createdAt
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const CreateBotMutation = graphql(`
  mutation CreateBot($projectId: ID!, $botId: String!, $name: String!, $token: String!) {
    createBot(projectId: $projectId, botId: $botId, name: $name, token: $token) {
      __typename
      ... on BotCreated {
        bot {
          id
          name
        }
      }
      ... on Problem {
        message
      }
      ... on InvalidInput {
        field
      }
      ... on TelegramUnavailable {
        retryAfterSeconds
      }
    }
  }
`);

export const DeleteBotMutation = graphql(`
  mutation DeleteBot($botId: ID!) {
    deleteBot(botId: $botId) {
      __typename
      ... on BotDeleted {
        botId
        webhookRemoved
      }
      ... on Problem {
        message
      }
    }
  }
`);

export const BotQuery = graphql(`
  query Bot($botId: ID!) {
    bot(botId: $botId) {
      id
      projectId
      name
      telegramBotId
      telegramUsername
      activeRevHash
      activeSince
      createdAt
      latestSpecVersion
      activeRevision {
        revHash
        specVersion
        specHash
        createdAt
        build
      }
    }
  }
`);

export const BotProjectQuery = graphql(`
  query BotProject($projectId: ID!) {
    project(projectId: $projectId) {
      id
      name
      viewerRole
    }
  }
`);

export const WebhookQuery = graphql(`
  query Webhook($botId: ID!) {
    bot(botId: $botId) {
      id
      webhook {
        __typename
        ... on WebhookState {
          url
          expectedUrl
          registered
          pendingUpdateCount
          lastErrorMessage
          lastErrorAt
        }
        ... on TelegramUnavailable {
          message
          retryAfterSeconds
        }
        ... on TokenRejected {
          message
        }
      }
    }
  }
`);

export const RevisionsQuery = graphql(`
  query Revisions($botId: ID!, $after: String) {
    revisions(botId: $botId, first: 50, after: $after) {
      edges {
        node {
          botId
          revHash
          specVersion
          specHash
          artifactsUri
          artifacts {
            name
            sha256
            size
          }
          build
          createdAt
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const DeploymentsQuery = graphql(`
  query Deployments($botId: ID!, $after: String) {
    deployments(botId: $botId, first: 50, after: $after) {
      edges {
        node {
          id
          revHash
          previousRevHash
          kind
          percent
          status
          why
          failedStage
          reason
          stages {
            stage
            status
            detail
            at
          }
          taskId
          createdAt
          finishedAt
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const TasksQuery = graphql(`
  query Tasks($botId: ID!, $after: String) {
    tasks(botId: $botId, first: 50, after: $after) {
      edges {
        node {
          id
          kind
          status
          attempts
          maxAttempts
          result
          error
          createdAt
          startedAt
          finishedAt
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const TaskQuery = graphql(`
  query Task($id: ID!) {
    task(id: $id) {
      id
      kind
      status
      attempts
      maxAttempts
      result
      error
      createdAt
      startedAt
      finishedAt
    }
  }
`);

export const SpecVersionQuery = graphql(`
  query SpecVersion($botId: ID!, $version: Int) {
    specVersion(botId: $botId, version: $version) {
      botId
      version
      specHash
      message
      authorId
      createdAt
      spec
    }
  }
`);

export const SpecVersionsQuery = graphql(`
  query SpecVersions($botId: ID!, $after: String) {
    specVersions(botId: $botId, first: 100, after: $after) {
      edges {
        node {
          version
          specHash
          message
          authorId
          createdAt
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const SaveSpecMutation = graphql(`
  mutation SaveSpec($botId: ID!, $spec: JSON!, $expectedVersion: Int!, $message: String!) {
    saveSpecVersion(botId: $botId, spec: $spec, expectedVersion: $expectedVersion, message: $message) {
      __typename
      ... on SpecSaved {
        created
        specVersion {
          botId
          version
          specHash
          message
          createdAt
        }
      }
      ... on SpecInvalid {
        message
        errors {
          pointer
          code
          message
          hint
        }
      }
      ... on VersionConflict {
        message
        expectedVersion
        currentVersion
      }
      ... on InvalidInput {
        message
        field
      }
    }
  }
`);

export const GenerateMutation = graphql(`
  mutation Generate($botId: ID!, $idempotencyKey: String!, $specVersion: Int, $generator: Generator!) {
    generate(botId: $botId, idempotencyKey: $idempotencyKey, specVersion: $specVersion, generator: $generator) {
      ...StartTaskFields
    }
  }
`);

export const DeployMutation = graphql(`
  mutation Deploy($botId: ID!, $revHash: String!, $idempotencyKey: String!, $force: Boolean!, $why: String!) {
    deploy(botId: $botId, revHash: $revHash, idempotencyKey: $idempotencyKey, force: $force, why: $why) {
      ...StartTaskFields
    }
  }
`);

export const RollbackMutation = graphql(`
  mutation Rollback($botId: ID!, $idempotencyKey: String!, $toRevHash: String, $force: Boolean!, $why: String!) {
    rollback(botId: $botId, idempotencyKey: $idempotencyKey, toRevHash: $toRevHash, force: $force, why: $why) {
      ...StartTaskFields
    }
  }
`);

export const StartTaskFields = graphql(`
  fragment StartTaskFields on StartTaskResult {
    __typename
    ... on TaskStarted {
      task {
        id
        kind
        status
        createdAt
      }
    }
    ... on IdempotencyKeyReused {
      taskId
    }
    ... on Problem {
      message
    }
  }
`);

export const ProgressSubscription = graphql(`
  subscription Progress($botId: ID) {
    progress(botId: $botId) {
      __typename
      botId
      taskId
      at
      ... on GenerateStarted {
        message
      }
      ... on GenerateProgress {
        stage
        message
      }
      ... on GenerateSucceeded {
        revHash
      }
      ... on GenerateFailed {
        reason
      }
      ... on DeployStarted {
        startRevHash: revHash
        deploymentId
      }
      ... on DeployProgress {
        stage
        message
        deploymentId
      }
      ... on DeployFlipped {
        revHash
        deploymentId
      }
      ... on DeployFailed {
        stage
        reason
        deploymentId
      }
      ... on RollbackFlipped {
        revHash
        deploymentId
      }
      ... on RolloutChanged {
        revHash
        stage
        message
        deploymentId
      }
    }
  }
`);

export const RolloutFields = graphql(`
  fragment RolloutFields on Rollout {
    id
    botId
    stableRev
    candidateRev
    percent
    status
    steps
    auto
    dwellSec
    errorMargin
    minUpdates
    stepStartedAt
    nextStep
    reason
    createdAt
    endedAt
    pinnedChats
    stable {
      ...RevisionShareFields
    }
    candidate {
      ...RevisionShareFields
    }
  }
`);

export const RevisionShareFields = graphql(`
  fragment RevisionShareFields on RevisionShare {
    revHash
    updates
    errors
    deadLettered
    chats
    errorRate
    deadLetterRate
  }
`);

/** What every rollout operation answers (RolloutResult). */
export const RolloutResultFields = graphql(`
  fragment RolloutResultFields on RolloutResult {
    __typename
    ... on RolloutUpdated {
      deploymentId
      rollout {
        ...RolloutFields
      }
    }
    ... on NotFound {
      message
    }
    ... on InvalidInput {
      message
      field
    }
    ... on RolloutRefusedProblem {
      message
    }
  }
`);

export const RolloutQuery = graphql(`
  query Rollout($botId: ID!) {
    rollout(botId: $botId) {
      ...RolloutFields
    }
  }
`);

export const StartRolloutMutation = graphql(`
  mutation StartRollout(
    $botId: ID!
    $revHash: String!
    $idempotencyKey: String!
    $percent: Int!
    $steps: [Int!]
    $auto: Boolean!
    $dwellSec: Int!
    $errorMargin: Float!
    $minUpdates: Int!
    $why: String!
  ) {
    startRollout(
      botId: $botId
      revHash: $revHash
      idempotencyKey: $idempotencyKey
      percent: $percent
      steps: $steps
      auto: $auto
      dwellSec: $dwellSec
      errorMargin: $errorMargin
      minUpdates: $minUpdates
      why: $why
    ) {
      ...StartTaskFields
      ... on InvalidInput {
        field
      }
    }
  }
`);

export const AdvanceRolloutMutation = graphql(`
  mutation AdvanceRollout($botId: ID!, $percent: Int, $why: String!) {
    advanceRollout(botId: $botId, percent: $percent, why: $why) {
      ...RolloutResultFields
    }
  }
`);

export const PauseRolloutMutation = graphql(`
  mutation PauseRollout($botId: ID!) {
    pauseRollout(botId: $botId) {
      ...RolloutResultFields
    }
  }
`);

export const ResumeRolloutMutation = graphql(`
  mutation ResumeRollout($botId: ID!) {
    resumeRollout(botId: $botId) {
      ...RolloutResultFields
    }
  }
`);

export const PromoteRolloutMutation = graphql(`
  mutation PromoteRollout($botId: ID!, $why: String!) {
    promoteRollout(botId: $botId, why: $why) {
      ...RolloutResultFields
    }
  }
`);

export const AbortRolloutMutation = graphql(`
  mutation AbortRollout($botId: ID!, $why: String!) {
    abortRollout(botId: $botId, why: $why) {
      ...RolloutResultFields
    }
  }
`);

export const PinChatMutation = graphql(`
  mutation PinChat($botId: ID!, $chatId: String!) {
    pinChat(botId: $botId, chatId: $chatId) {
      ...RolloutResultFields
    }
  }
`);

export const UnpinChatMutation = graphql(`
  mutation UnpinChat($botId: ID!, $chatId: String!) {
    unpinChat(botId: $botId, chatId: $chatId) {
      ...RolloutResultFields
    }
  }
`);

export const SetConversationAffinityMutation = graphql(`
  mutation SetConversationAffinity($botId: ID!, $maxAgeSec: Int!) {
    setConversationAffinity(botId: $botId, maxAgeSec: $maxAgeSec) {
      __typename
      ... on AffinitySet {
        maxAgeSec
      }
      ... on NotFound {
        message
      }
      ... on InvalidInput {
        message
        field
      }
    }
  }
`);

export const AnalyticsQuery = graphql(`
  query Analytics($botId: ID!, $days: Int!) {
    analytics(botId: $botId, days: $days) {
      botId
      since
      until
      daily {
        day
        updates
        messagesSent
        errors
        errorRate
        p50LatencyMs
        p95LatencyMs
      }
      eventCounts {
        type
        count
      }
    }
  }
`);

export const FunnelQuery = graphql(`
  query Funnel($botId: ID!, $days: Int!, $flowId: String!) {
    analytics(botId: $botId, days: $days) {
      botId
      funnel(flowId: $flowId) {
        stage
        step
        chats
      }
    }
  }
`);

export const ValidateSpecQuery = graphql(`
  query ValidateSpec($spec: JSON!) {
    validateSpec(spec: $spec) {
      pointer
      code
      message
      hint
    }
  }
`);

export const ExamplesQuery = graphql(`
  query Examples {
    examples {
      name
      title
      description
      locales
      spec
      apiFixture
    }
  }
`);

export const BotSecretsQuery = graphql(`
  query BotSecrets($botId: ID!) {
    bot(botId: $botId) {
      id
      secrets {
        name
        updatedAt
      }
      missingSecrets
    }
  }
`);

export const MissingSecretsQuery = graphql(`
  query MissingSecrets($botId: ID!, $revHash: String) {
    bot(botId: $botId) {
      id
      missingSecrets(revHash: $revHash)
    }
  }
`);

export const SetBotSecretMutation = graphql(`
  mutation SetBotSecret($botId: ID!, $name: String!, $value: String!) {
    setBotSecret(botId: $botId, name: $name, value: $value) {
      __typename
      ... on BotSecretSet {
        botId
        secret {
          name
          updatedAt
        }
      }
      ... on InvalidInput {
        field
      }
      ... on SecretLimitReached {
        limit
      }
      ... on Problem {
        message
      }
    }
  }
`);

export const DeleteBotSecretMutation = graphql(`
  mutation DeleteBotSecret($botId: ID!, $name: String!) {
    deleteBotSecret(botId: $botId, name: $name) {
      __typename
      ... on BotSecretDeleted {
        botId
        name
      }
      ... on Problem {
        message
      }
    }
  }
`);
