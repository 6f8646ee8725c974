/**
 * Relay-style lists (`edges { node }`, `pageInfo { hasNextPage endCursor }`) with a "Show more":
 * the first page comes from urql's `useQuery` (cached, refetchable); later pages are fetched with
 * `after` and appended. A refetch of the first page (new data) drops the appended pages.
 */
import { useCallback, useEffect, useState } from "react";
import { useClient, useQuery, type AnyVariables } from "urql";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";

export interface Connection<N> {
  edges: { node: N }[];
  pageInfo: { hasNextPage: boolean; endCursor?: string | null };
}

export function usePaged<D, V extends AnyVariables & { after?: string | null }, N>(
  query: TypedDocumentNode<D, V>,
  variables: V,
  pick: (data: D) => Connection<N> | undefined,
) {
  const client = useClient();
  const [first, refetch] = useQuery({ query, variables });
  const [extra, setExtra] = useState<{ nodes: N[]; cursor: string | null; more: boolean } | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const page = first.data ? pick(first.data) : undefined;
  useEffect(() => setExtra(null), [first.data]);
  const nodes = [...(page?.edges.map((e) => e.node) ?? []), ...(extra?.nodes ?? [])];
  const hasMore = extra ? extra.more : (page?.pageInfo.hasNextPage ?? false);
  const cursor = extra ? extra.cursor : (page?.pageInfo.endCursor ?? null);
  const loadMore = useCallback(async () => {
    if (!cursor) return;
    setLoadingMore(true);
    const r = await client.query(query, { ...variables, after: cursor } as V, { requestPolicy: "network-only" }).toPromise();
    setLoadingMore(false);
    const next = r.data ? pick(r.data) : undefined;
    if (!next) return;
    setExtra((prev) => ({
      nodes: [...(prev?.nodes ?? []), ...next.edges.map((e) => e.node)],
      cursor: next.pageInfo.endCursor ?? null,
      more: next.pageInfo.hasNextPage,
    }));
  }, [client, cursor, pick, query, variables]);
  return { nodes, fetching: first.fetching, error: first.error, hasData: !!first.data, hasMore, loadMore, loadingMore, refetch };
}
