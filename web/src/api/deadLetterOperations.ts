/**
 * The dead-letter page's operations (pages/DeadLettersPage.tsx). Types come from `npm run codegen`
 * into src/gql/, as for api/operations.ts.
 */
import { graphql } from "../gql";

export const DeadLettersQuery = graphql(`
  query DeadLetters($botId: ID!, $queue: DeadLetterQueue!, $first: Int!, $offset: Int!) {
    deadLetters(botId: $botId, queue: $queue, first: $first, offset: $offset) {
      __typename
      queue
      index
      chatId
      at
      payload
      ... on InboundDeadLetter {
        updateId
        reason
        deliveries
        payloadText
      }
      ... on OutboundDeadLetter {
        method
        error
        errorCode
        attempts
        dedupKey
        actionIndex
      }
    }
  }
`);

export const ReplayDeadLettersMutation = graphql(`
  mutation ReplayDeadLetters($botId: ID!, $queue: DeadLetterQueue!, $index: Int) {
    replayDeadLetters(botId: $botId, queue: $queue, index: $index) {
      __typename
      ... on DeadLettersReplayed {
        queue
        replayed
        kept
        outcomes {
          index
          chatId
          status
          error
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

export const DropDeadLettersMutation = graphql(`
  mutation DropDeadLetters($botId: ID!, $queue: DeadLetterQueue!, $index: Int) {
    dropDeadLetters(botId: $botId, queue: $queue, index: $index) {
      __typename
      ... on DeadLettersDropped {
        queue
        dropped
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
