import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from './load';

const minimal = (models: string, extra = '') => `model_list:\n${models}\ngeneral_settings:\n  master_key: sk-1\n${extra}`;
const mockModel = '  - model_name: m\n    litellm_params:\n      model: mock/gpt-3.5-turbo';

describe('parseConfig', () => {
  it('reads LiteLLM config.yaml, resolving os.environ/ references', () => {
    const config = parseConfig(
      `model_list:
  - model_name: gpt
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/OPENAI_KEY
general_settings:
  master_key: os.environ/MASTER
litellm_settings:
  max_end_user_budget_id: tier
  timezone: Asia/Shanghai
`,
      { OPENAI_KEY: 'sk-up', MASTER: 'sk-master', TOLLGATE_DATA_DIR: '/tmp/x' },
    );
    expect(config.masterKey).toBe('sk-master');
    expect(config.deployments[0]).toMatchObject({ modelName: 'gpt', provider: 'openai', upstreamModel: 'gpt-4o', apiKey: 'sk-up' });
    expect(config.deployments[0]!.price.inputPerToken).toBe(2_500_000n); // $2.5 / 1M tokens from the table
    expect(config.defaultBudgetId).toBe('tier');
    expect(config.timezone).toBe('Asia/Shanghai');
    expect(config.dataDir).toBe('/tmp/x');
  });

  it('names the key when a required value is missing or malformed', () => {
    expect(() => parseConfig(`model_list:\n${mockModel}\ngeneral_settings:\n  master_key: os.environ/NOPE\n`, {})).toThrow(/general_settings\.master_key/);
    expect(() => parseConfig(minimal('  - model_name: m\n    litellm_params:\n      model: gpt-4o'))).toThrow(/model_list\[0\]\.litellm_params\.model/);
    expect(() => parseConfig(minimal(mockModel, 'litellm_settings:\n  timezone: Mars/Olympus\n'))).toThrow(/litellm_settings\.timezone/);
    expect(() => parseConfig('model_list: [\n')).toThrow(ConfigError);
    expect(() => parseConfig(minimal('  - model_name: m\n    litellm_params:\n      model: openai/x\n      input_cost_per_token: -1'))).toThrow(/input_cost_per_token/);
  });

  it('refuses an unpriced model unless priced at 0 explicitly', () => {
    const unpriced = '  - model_name: local\n    litellm_params:\n      model: ollama/my-finetune\n      api_base: http://127.0.0.1:11434';
    expect(() => parseConfig(minimal(unpriced))).toThrow(/no price is known for "ollama\/my-finetune"/);
    const free = `${unpriced}\n      input_cost_per_token: 0\n      output_cost_per_token: 0`;
    expect(parseConfig(minimal(free)).deployments[0]!.price).toMatchObject({ inputPerToken: 0n, outputPerToken: 0n });
  });

  it('fails closed unless told to fail open, and names a wrong fail mode', () => {
    expect(parseConfig(minimal(mockModel)).failMode).toBe('closed');
    expect(parseConfig(minimal(mockModel, 'tollgate:\n  fail_mode: open\n')).failMode).toBe('open');
    expect(parseConfig(minimal(mockModel, 'tollgate:\n  fail_mode: open\n'), { TOLLGATE_FAIL_MODE: 'closed' }).failMode).toBe('closed');
    expect(() => parseConfig(minimal(mockModel, 'tollgate:\n  fail_mode: maybe\n'))).toThrow(/tollgate\.fail_mode/);
    expect(() => parseConfig(minimal(mockModel), { TOLLGATE_FAIL_MODE: 'ajar' })).toThrow(/TOLLGATE_FAIL_MODE: must be "closed" or "open", not "ajar"/);
  });

  it('warns once about keys it ignores', () => {
    const config = parseConfig(minimal(mockModel, 'general_settings_extra: 1\nlitellm_settings:\n  drop_params: true\n'));
    expect(config.warnings).toEqual([expect.stringContaining('general_settings_extra, litellm_settings.drop_params')]);
  });
});
