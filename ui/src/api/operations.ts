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
  isDefault: boolean;
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
  status: CustomerStatus;
  prepaid: boolean;
  createdAt: string;
}

export type CustomerStatus = 'active' | 'over_budget' | 'rate_limited' | 'blocked';

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

const BUDGET_FIELDS = 'id maxBudget softBudget rpmLimit tpmLimit maxParallelRequests budgetDuration resetAt customerCount isDefault';
const CUSTOMER_FIELDS = `id alias spend blocked budgetId status prepaid createdAt budget { ${BUDGET_FIELDS} }`;

export const CHECK_KEY = 'query CheckKey { budgets { id } }';

export const BUDGETS = `query Budgets { budgets { ${BUDGET_FIELDS} } }`;

export const CREATE_BUDGET = `mutation CreateBudget($input: CreateBudgetInput!) { createBudget(input: $input) { ${BUDGET_FIELDS} } }`;

export const UPDATE_BUDGET = `mutation UpdateBudget($id: ID!, $input: BudgetInput!) { updateBudget(id: $id, input: $input) { ${BUDGET_FIELDS} } }`;

export const DELETE_BUDGET = 'mutation DeleteBudget($id: ID!, $moveTo: ID) { deleteBudget(id: $id, moveTo: $moveTo) { id } }';

export const CUSTOMERS = `query Customers($first: Int!, $offset: Int, $search: String, $budgetId: String, $status: CustomerStatus, $sort: CustomerSort) {
  customers(first: $first, offset: $offset, search: $search, budgetId: $budgetId, status: $status, sort: $sort) { nodes { ${CUSTOMER_FIELDS} } pageInfo { hasNextPage endCursor } totalCount }
}`;

export const UPDATE_CUSTOMER = `mutation UpdateCustomer($id: ID!, $input: CustomerFieldsInput!) { updateCustomer(id: $id, input: $input) { ${CUSTOMER_FIELDS} } }`;

export const CUSTOMER = `query Customer($id: ID!) { customer(id: $id) { ${CUSTOMER_FIELDS} } }`;

export const BLOCK = `mutation Block($ids: [ID!]!) { blockCustomers(ids: $ids) { ${CUSTOMER_FIELDS} } }`;

export const UNBLOCK = `mutation Unblock($ids: [ID!]!) { unblockCustomers(ids: $ids) { ${CUSTOMER_FIELDS} } }`;

export const SPEND_LOGS = `query SpendLogs($customerId: ID!, $first: Int!, $after: String, $from: DateTimeISO, $to: DateTimeISO) {
  spendLogs(customerId: $customerId, first: $first, after: $after, from: $from, to: $to) {
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
  type: 'soft_budget_crossed' | 'threshold_crossed' | 'budget_crossed' | 'credits_low' | 'credits_exhausted';
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

export interface SpendSlice {
  key: string;
  spend: number;
  requests: number;
}

export interface RefusedRequest {
  customerId: string;
  model: string;
  reason: string;
  status: number;
  limitType: string | null;
  limitValue: string | null;
  budgetId: string | null;
  message: string;
  count: number;
  firstAt: string;
  lastAt: string;
}

export interface OverviewData {
  timeZone: string;
  today: { spend: number; requests: number };
  last30Days: { spend: number; requests: number };
  periodSpend: number;
  range: { spend: number; requests: number };
  series: SpendSlice[];
  topCustomers: SpendSlice[];
  byModel: SpendSlice[];
  byTier: SpendSlice[];
  refusalsByReason: { reason: string; count: number; customers: number }[];
  nearCap: { customerId: string; spend: number; maxBudget: number; budgetId: string; used: number }[];
}

export const OVERVIEW = `query Overview($from: DateTimeISO!, $to: DateTimeISO!, $timeZone: String, $todayFrom: DateTimeISO!) {
  overview(from: $from, to: $to, timeZone: $timeZone) {
    timeZone today { spend requests } last30Days { spend requests } periodSpend range { spend requests }
    series { key spend requests } topCustomers(first: 10) { key spend requests } byModel { key spend requests } byTier { key spend requests }
    refusalsByReason { reason count customers } nearCap(first: 20) { customerId spend maxBudget budgetId used }
  }
  refusedRequests(from: $todayFrom, first: 20) { customerId model reason status limitType limitValue budgetId message count firstAt lastAt }
}`;

export const CUSTOMER_SERIES = `query CustomerSeries($from: DateTimeISO!, $to: DateTimeISO!, $timeZone: String, $customerId: ID!) {
  overview(from: $from, to: $to, timeZone: $timeZone) { series(customerId: $customerId) { key spend requests } }
  spendReport(from: $from, to: $to, groupBy: model, customerId: $customerId) { key spend requests }
}`;

export const CUSTOMER_HISTORY = `query CustomerHistory($customerId: ID!) {
  spendPeriods(customerId: $customerId) { periodStart spend requests }
  refusedRequests(customerId: $customerId, first: 50) { customerId model reason status limitType limitValue budgetId message count firstAt lastAt }
  budgetAlerts(customerId: $customerId, first: 50) { id type customerId budgetId threshold spend maxBudget softBudget at }
  customerAudit(customerId: $customerId, first: 50) { id action actor changes at }
}`;

export interface SpendPeriod {
  periodStart: string;
  spend: number;
  requests: number;
}

export interface AuditEntry {
  id: string;
  action: string;
  actor: string;
  changes: Record<string, [unknown, unknown]>;
  at: string;
}

export interface ApiKeyDetails {
  id: string;
  alias: string | null;
  scope: string;
  revoked: boolean;
  prefix: string;
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
  /** The customer a bound key always acts for, or null. */
  customerId: string | null;
}

const KEY_FIELDS = 'id alias scope revoked prefix createdAt revokedAt lastUsedAt customerId';

export const API_KEYS = `query ApiKeys { apiKeyList { ${KEY_FIELDS} } }`;

export const CREATE_API_KEY = `mutation CreateApiKey($alias: String, $scope: KeyScope!, $customerId: ID) { createApiKey(alias: $alias, scope: $scope, customerId: $customerId) { key apiKey { id } } }`;

export const REVOKE_API_KEY = `mutation RevokeApiKey($id: ID!) { revokeApiKey(id: $id) { id } }`;

export interface CreditGrant {
  reference: string;
  amount: number;
  kind: string;
  expiresAt: string | null;
  voidedAt: string | null;
  createdAt: string;
  consumed: number | null;
  remaining: number | null;
  status: string | null;
}

export interface CustomerCredits {
  customerId: string;
  prepaid: boolean;
  granted: number;
  consumed: number;
  balance: number;
  grants: CreditGrant[];
}

const CREDIT_FIELDS = 'customerId prepaid granted consumed balance grants { reference amount kind expiresAt voidedAt createdAt consumed remaining status }';

export const CUSTOMER_CREDITS = `query CustomerCredits($customerId: ID!) { customerCredits(customerId: $customerId) { ${CREDIT_FIELDS} } }`;

export const GRANT_CREDITS = `mutation GrantCredits($customerId: ID!, $amount: Float!, $reference: String!, $kind: String, $expiresAt: DateTimeISO) {
  grantCredits(customerId: $customerId, amount: $amount, reference: $reference, kind: $kind, expiresAt: $expiresAt) { created credits { ${CREDIT_FIELDS} } }
}`;
