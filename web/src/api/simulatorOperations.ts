/**
 * The chat simulator's operations (pages/SimulatorPage.tsx). Types come from `npm run codegen`
 * into src/gql/, as for api/operations.ts.
 */
import { graphql } from "../gql";

export const SimulatorExamplesQuery = graphql(`
  query SimulatorExamples {
    examples {
      name
      title
      apiFixture
    }
  }
`);

export const SimulateMutation = graphql(`
  mutation Simulate($botId: ID!, $input: SimulateInput!) {
    simulate(botId: $botId, input: $input) {
      __typename
      ... on Simulated {
        engine
        revHash
        now
        update
        actions {
          method
          params
        }
        state
        events {
          type
          data
        }
        requests {
          method
          url
          request
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
      ... on SimulationFailed {
        message
      }
      ... on NotFound {
        message
        what
      }
      ... on InvalidInput {
        message
        field
      }
    }
  }
`);
