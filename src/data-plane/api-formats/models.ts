/**
 * @module `GET /v1/models` in both shapes: OpenAI's list, and Anthropic's (`data` of
 * `{type: "model", id, display_name, created_at}` with paging fields) for clients that send
 * `anthropic-version`, as the Anthropic SDK's `models.list()` does.
 */
export function openAIModelList(names: string[]): Record<string, unknown> {
  return { object: 'list', data: names.map((id) => ({ id, object: 'model', created: 0, owned_by: 'tollgate' })) };
}

export function anthropicModelList(names: string[]): Record<string, unknown> {
  const data = names.map((id) => ({ type: 'model', id, display_name: id, created_at: '1970-01-01T00:00:00Z' }));
  return { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data[data.length - 1]?.id ?? null };
}
