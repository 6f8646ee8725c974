// GraphQL Code Generator: typed operations from the API's exported schema.
// `npm run codegen` after graphql/schema.graphql changes; src/gql/ is committed so
// a build needs neither a server nor this step.
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: "../graphql/schema.graphql",
  documents: ["src/**/*.{ts,tsx}", "!src/gql/**/*"],
  ignoreNoDocuments: true,
  generates: {
    "src/gql/": {
      preset: "client",
      presetConfig: { fragmentMasking: false },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        skipTypename: false,
        scalars: { DateTime: "string", Date: "string", JSON: "unknown", ID: "string" },
      },
    },
  },
};

export default config;
