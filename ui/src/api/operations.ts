/** The GraphQL operations the UI sends, and the shapes they return. */
export interface Budget {
  id: string;
  maxBudget: number | null;
  softBudget: number | null;
  rpmLimit: number | null;
  tpmLimit: number | null;
  maxParallelRequests: number | null;
  budgetDuration: string | null;
  resetAt: string | null;
  customerCount: number;
}

export interface BudgetLimits {
  maxBudget: number | null;
  softBudget: number | null;
  rpmLimit: number | null;
  tpmLimit: number | null;
  maxParallelRequests: number | null;
  budgetDuration: string | null;
}

export interface Customer {
  id: string;
  alias: string | null;
  spend: number;
  blocked: boolean;
  budgetId: string | null;
  budget: Budget | null;
  createdAt: string;
}

export interface CustomerPage {
  nodes: Customer[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
  totalCount: number;
}

export interface SpendLog {
  requestId: string;
  model: string;
  promptTokens: number;
  completionTokens: number;
  cost: number;
  costSource: string;
  status: string;
  createdAt: string;
}

export interface SpendUpdate {
  customerId: string;
  cost: number;
  spend: number;
  maxBudget: number | null;
  model: string;
  promptTokens: number;
  completionTokens: number;
  requestId: string;
  at: string;
}

export interface ReportRow {
  key: string;
  spend: number;
  requests: number;
}

const BUDGET_FIELDS = 'id maxBudget softBudget rpmLimit tpmLimit maxParallelRequests budgetDuration resetAt customerCount';
const CUSTOMER_FIELDS = `id alias spend blocked budgetId createdAt budget { ${BUDGET_FIELDS} }`;

export const CHECK_KEY = 'query CheckKey { budgets { id } }';

export const BUDGETS = `query Budgets { budgets { ${BUDGET_FIELDS} } }`;

export const CREATE_BUDGET = `mutation CreateBudget($input: CreateBudgetInput!) { createBudget(input: $input) { ${BUDGET_FIELDS} } }`;

export const UPDATE_BUDGET = `mutation UpdateBudget($id: ID!, $input: BudgetInput!) { updateBudget(id: $id, input: $input) { ${BUDGET_FIELDS} } }`;

export const DELETE_BUDGET = 'mutation DeleteBudget($id: ID!, $detach: Boolean!) { deleteBudget(id: $id, detach: $detach) { id } }';

export const CUSTOMERS = `query Customers($first: Int!, $after: String, $search: String) {
  customers(first: $first, after: $after, search: $search) { nodes { ${CUSTOMER_FIELDS} } pageInfo { hasNextPage endCursor } totalCount }
}`;

export const CUSTOMER = `query Customer($id: ID!) { customer(id: $id) { ${CUSTOMER_FIELDS} } }`;

export const BLOCK = `mutation Block($ids: [ID!]!) { blockCustomers(ids: $ids) { ${CUSTOMER_FIELDS} } }`;

export const UNBLOCK = `mutation Unblock($ids: [ID!]!) { unblockCustomers(ids: $ids) { ${CUSTOMER_FIELDS} } }`;

export const SPEND_LOGS = `query SpendLogs($customerId: ID!, $first: Int!, $after: String) {
  spendLogs(customerId: $customerId, first: $first, after: $after) {
    nodes { requestId model promptTokens completionTokens cost costSource status createdAt }
    pageInfo { hasNextPage endCursor }
  }
}`;

export const SPEND_BY_DAY = `query SpendByDay($from: DateTimeISO!, $to: DateTimeISO!, $customerId: ID) {
  spendReport(from: $from, to: $to, groupBy: day, customerId: $customerId) { key spend requests }
}`;

export const SPEND_BY_MODEL = `query SpendByModel($from: DateTimeISO!, $to: DateTimeISO!, $customerId: ID) {
  spendReport(from: $from, to: $to, groupBy: model, customerId: $customerId) { key spend requests }
}`;

export const SPEND_UPDATED = `subscription SpendUpdated($customerId: ID) {
  spendUpdated(customerId: $customerId) { customerId cost spend maxBudget model promptTokens completionTokens requestId at }
}`;

export interface BudgetAlert {
  id: string;
  type: 'soft_budget_crossed' | 'threshold_crossed' | 'budget_crossed';
  customerId: string;
  budgetId: string | null;
  threshold: number | null;
  spend: number;
  maxBudget: number | null;
  softBudget: number | null;
  at: string;
}

export const BUDGET_EVENT = `subscription BudgetEvent($customerId: ID) {
  budgetEvent(customerId: $customerId) { id type customerId budgetId threshold spend maxBudget softBudget at }
}`;
