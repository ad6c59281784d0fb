/** @module The service layer: built once, shared by REST, GraphQL, the UI and governance. */
import { BudgetService } from './budgets';
import type { ServiceContext } from './context';
import { CustomerService } from './customers';
import { KeyService } from './keys';
import { SpendService } from './spend';
import { ViewerService } from './viewer';
import { StatementService } from './statements';
import { SpendAggregates } from './aggregates';
import { HistoryService } from './history';
import { RefusalService } from './refusals';
import { WebhookService } from '../webhooks/service';
import { ExporterService } from '../exporters/service';
import { CreditService } from './credits';

export interface Services {
  context: ServiceContext;
  spend: SpendService;
  budgets: BudgetService;
  customers: CustomerService;
  keys: KeyService;
  viewer: ViewerService;
  statements: StatementService;
  webhooks: WebhookService;
  aggregates: SpendAggregates;
  refusals: RefusalService;
  history: HistoryService;
  exporters: ExporterService;
  credits: CreditService;
}

export function createServices(context: ServiceContext): Services {
  const spend = new SpendService(context);
  const budgets = new BudgetService(context, spend);
  const refusals = new RefusalService(context);
  const customers = new CustomerService(context, budgets, spend, refusals);
  const credits = new CreditService(context, customers);
  return {
    context,
    credits,
    spend,
    budgets,
    customers,
    keys: new KeyService(context),
    viewer: new ViewerService(context, spend, credits),
    statements: new StatementService(context),
    webhooks: new WebhookService(context),
    aggregates: new SpendAggregates(context),
    refusals,
    history: new HistoryService(context),
    exporters: new ExporterService(context),
  };
}
