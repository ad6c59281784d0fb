/** @module The service layer: built once, shared by REST, GraphQL, the UI and governance. */
import { BudgetService } from './budgets';
import type { ServiceContext } from './context';
import { CustomerService } from './customers';
import { KeyService } from './keys';
import { SpendService } from './spend';
import { ViewerService } from './viewer';
import { StatementService } from './statements';
import { WebhookService } from '../webhooks/service';
import { ExporterService } from '../exporters/service';

export interface Services {
  context: ServiceContext;
  spend: SpendService;
  budgets: BudgetService;
  customers: CustomerService;
  keys: KeyService;
  viewer: ViewerService;
  statements: StatementService;
  webhooks: WebhookService;
  exporters: ExporterService;
}

export function createServices(context: ServiceContext): Services {
  const spend = new SpendService(context);
  const budgets = new BudgetService(context, spend);
  const customers = new CustomerService(context, budgets, spend);
  return { context, spend, budgets, customers, keys: new KeyService(context), viewer: new ViewerService(context, spend), statements: new StatementService(context), webhooks: new WebhookService(context), exporters: new ExporterService(context) };
}
