// SAP's official JavaScript SDK (@sap-ai-sdk/ai-api) against the local AI Core, unchanged: the
// SDK finds the service key in AICORE_SERVICE_KEY, fetches its own token and calls the API.
// Driven by tests/integration/test_aicore_local_js_sdk.py, which asserts on the JSON this prints.
//
// Env: AICORE_SERVICE_KEY (the emulator's key), SCENARIO, EXECUTABLE, SCRIPT (the fake predictor).
import {
  ConfigurationApi,
  DeploymentApi,
  ExecutableApi,
  MetaApi,
  ResourceGroupApi,
  ScenarioApi,
} from '@sap-ai-sdk/ai-api';

const RG = { 'AI-Resource-Group': 'default' };
const { SCENARIO, EXECUTABLE, SCRIPT } = process.env;
const out = {};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitStatus(id, status, seconds = 60) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const deployment = await DeploymentApi.deploymentGet(id, {}, RG).execute();
    if (deployment.status === status) return deployment;
    if (Date.now() > deadline) {
      throw new Error(`deployment ${id} is ${deployment.status}, not ${status}, after ${seconds}s`);
    }
    await sleep(200);
  }
}

// The SDK's error for a failed request: an axios error (cause) with the response.
function failure(error) {
  const response = error.cause?.response ?? error.response;
  return { status: response?.status, body: response?.data };
}

async function main() {
  out.meta = await MetaApi.metaGet().execute();

  const scenarios = await ScenarioApi.scenarioQuery(RG).execute();
  out.scenarioIds = scenarios.resources.map((s) => s.id);
  const executables = await ExecutableApi.executableQuery(SCENARIO, {}, RG).execute();
  out.executableIds = executables.resources.map((e) => e.id);

  const configuration = await ConfigurationApi.configurationCreate(
    {
      name: 'js-sdk',
      scenarioId: SCENARIO,
      executableId: EXECUTABLE,
      parameterBindings: [
        { key: 'script', value: SCRIPT },
        { key: 'modelName', value: 'js-sdk' },
      ],
    },
    RG,
  ).execute();
  out.configurationId = configuration.id;

  const created = await DeploymentApi.deploymentCreate(
    { configurationId: configuration.id },
    RG,
  ).execute();
  out.created = created;
  out.justCreated = await DeploymentApi.deploymentGet(created.id, {}, RG).execute();
  out.running = await waitStatus(created.id, 'RUNNING');
  const listed = await DeploymentApi.deploymentQuery({ scenarioId: SCENARIO }, RG).execute();
  out.listedIds = listed.resources.map((d) => d.id);
  out.stopRequest = await DeploymentApi.deploymentModify(
    created.id,
    { targetStatus: 'STOPPED' },
    RG,
  ).execute();
  out.stopped = await waitStatus(created.id, 'STOPPED');
  out.deleted = await DeploymentApi.deploymentDelete(created.id, RG).execute();

  try {
    await DeploymentApi.deploymentGet('d0000000000000000', {}, RG).execute();
    out.notFound = { status: 200 };
  } catch (error) {
    out.notFound = failure(error);
  }

  out.rgCreated = await ResourceGroupApi.kubesubmitV4ResourcegroupsCreate({
    resourceGroupId: 'rg-js-sdk',
    labels: [{ key: 'ext.ai.sap.com/team', value: 'search' }],
  }).execute();
  out.rg = await ResourceGroupApi.kubesubmitV4ResourcegroupsGet('rg-js-sdk').execute();
  try {
    await ResourceGroupApi.kubesubmitV4ResourcegroupsCreate({
      resourceGroupId: 'rg-js-sdk-long',
      labels: [{ key: 'ext.ai.sap.com/team', value: 'x'.repeat(5001) }],
    }).execute();
    out.longLabel = { status: 202 };
  } catch (error) {
    out.longLabel = failure(error);
  }
  out.rgDeleted = await ResourceGroupApi.kubesubmitV4ResourcegroupsDelete('rg-js-sdk').execute();
}

main().then(
  () => console.log(JSON.stringify(out)),
  (error) => {
    console.error(error?.stack ?? error);
    console.error(JSON.stringify({ partial: out, failure: failure(error) }));
    process.exit(1);
  },
);
