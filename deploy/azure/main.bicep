// Claqueta on Azure: everything the bot needs in one resource group.
//
//   Web App for Containers (Linux, 2+ instances)  ← image from the Container Registry (pulled with a managed identity)
//   Azure Bot (single tenant) with the Teams and Outlook channels → https://<host>/api/messages
//   Key Vault (RBAC) with the app's secrets, read by the web app through a user-assigned identity
//   Log Analytics + Application Insights, web app logs sent to the workspace
//
// The bot's state lives in SharePoint lists of the tenant (CLAQUETA_BACKEND=graph), so no database and no
// storage account are created here: any instance can answer any request.
//
// Deploy (see deploy/README.md, step 8):
//   az deployment group create -g <grupo> -f deploy/azure/main.bicep -p @deploy/azure/main.parameters.json \
//      -p botAppPassword=<secreto>

targetScope = 'resourceGroup'

// ── Names and place ──────────────────────────────────────────────────────────────────────────────────
@description('Short lowercase prefix for every resource name.')
@minLength(3)
@maxLength(12)
param baseName string = 'claqueta'

@description('Azure region for the regional resources (the Azure Bot itself is global).')
param location string = resourceGroup().location

@description('Tags added to every resource.')
param tags object = {
  app: 'claqueta'
  owner: 'OCOIM'
}

// ── Bot identity (an app registration, single tenant) ────────────────────────────────────────────────
@description('Application (client) id of the bot\'s app registration in Microsoft Entra ID.')
param botAppId string

@description('Client secret of that app registration. Stored only in Key Vault.')
@secure()
param botAppPassword string

@description('Tenant id of the app registration (single-tenant bot).')
param tenantId string = tenant().tenantId

// ── Microsoft Graph and Microsoft 365 ────────────────────────────────────────────────────────────────
@description('App registration used for Microsoft Graph; by default the bot\'s own.')
param graphClientId string = botAppId

@description('Secret of the Graph app registration; empty = the bot\'s secret (same app registration).')
@secure()
param graphClientSecret string = ''

@description('Id of the SharePoint site that holds Claqueta\'s lists (host,siteCollectionId,webId).')
param sharepointSiteId string

@description('Id of the document library (drive) where pieces are uploaded.')
param sharepointDriveId string

@description('The office mailbox Claqueta sends mail and creates meetings from (e.g. ocoim@proinversion.gob.pe).')
param officeMailbox string

@description('Originator id of the Actionable Email provider (empty until it is approved).')
param outlookOriginatorId string = ''

@description('Role → Entra security group id, e.g. {"COORDINATOR": "<id>", "PRESS": "<id>"} (GRAPH_ROLE_GROUPS).')
param roleGroups object

@description('Area code → the director\'s Entra user id; empty = the directors in the people file (GRAPH_AREA_DIRECTORS).')
param areaDirectors object = {}

@description('Areas file inside the image (codes, names, directors), relative to /app (CLAQUETA_PEOPLE_FILE).')
param peopleFile string = 'config/people.yaml'

@description('Shared secret for an external reminder scheduler (POST /api/jobs/reminders); empty = none.')
@secure()
param schedulerToken string = ''

@description('More app settings (name → value), e.g. the role group ids once the directory adapter reads them.')
param extraAppSettings object = {}

// ── Web app ──────────────────────────────────────────────────────────────────────────────────────────
@description('Image in the registry, name:tag (built with `az acr build`, see deploy/README.md).')
param containerImage string = 'claqueta:1.0.0'

@description('App Service plan SKU (Linux). P0v3 or larger for production; B1 works for a trial.')
param appServiceSku string = 'P0v3'

@description('Number of web app instances. Two or more: Teams keeps working while one restarts.')
@minValue(1)
@maxValue(10)
param instanceCount int = 2

@description('Public host name if a custom domain is bound later; empty = <name>.azurewebsites.net.')
param customHostName string = ''

@description('Azure Bot pricing tier. Teams and Outlook are standard channels: F0 is enough.')
@allowed([
  'F0'
  'S1'
])
param botSku string = 'F0'

@description('Turn on Key Vault purge protection (irreversible; a deleted vault then keeps its name 90 days).')
param keyVaultPurgeProtection bool = false

@description('Days Log Analytics keeps logs.')
param logRetentionDays int = 30

// ── Derived names ────────────────────────────────────────────────────────────────────────────────────
var suffix = take(uniqueString(resourceGroup().id, baseName), 6)
var compactBase = replace(baseName, '-', '')
var webAppName = '${baseName}-${suffix}'
var planName = '${baseName}-plan-${suffix}'
var identityName = '${baseName}-id-${suffix}'
var keyVaultName = take('kv-${baseName}-${suffix}', 24)
var registryName = take('acr${compactBase}${suffix}', 50)
var workspaceName = '${baseName}-logs-${suffix}'
var insightsName = '${baseName}-ai-${suffix}'
var botName = '${baseName}-bot-${suffix}'
var publicHost = empty(customHostName) ? '${webAppName}.azurewebsites.net' : customHostName

// Built-in role definition ids (same in every tenant).
var keyVaultSecretsUserRole = '4633458b-17de-408a-b874-0445c86b69e6'
var acrPullRole = '7f951dda-4ed3-4680-a7ca-43fe172d538d'

// ── Identity the web app uses to read secrets and pull its image ─────────────────────────────────────
resource appIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: identityName
  location: location
  tags: tags
}

// ── Monitoring ───────────────────────────────────────────────────────────────────────────────────────
resource workspace 'Microsoft.OperationalInsights/workspaces@2022-10-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionDays
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: insightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
  }
}

// ── Secrets ──────────────────────────────────────────────────────────────────────────────────────────
resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: keyVaultName
  location: location
  tags: tags
  // Key Vault refuses enablePurgeProtection: false, so the property is only sent to turn it on. It cannot be
  // turned off afterwards: off by default, so that a rollback can purge the vault and reuse its name.
  properties: union({
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    publicNetworkAccess: 'Enabled'
  }, keyVaultPurgeProtection ? {
    enablePurgeProtection: true
  } : {})
}

resource botSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: keyVault
  name: 'bot-app-password'
  properties: {
    value: botAppPassword
    contentType: 'Client secret of the bot app registration (MicrosoftAppPassword)'
  }
}

resource graphSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: keyVault
  name: 'graph-client-secret'
  properties: {
    value: empty(graphClientSecret) ? botAppPassword : graphClientSecret
    contentType: 'Client secret used for Microsoft Graph (GRAPH_CLIENT_SECRET)'
  }
}

resource schedulerSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(schedulerToken)) {
  parent: keyVault
  name: 'scheduler-token'
  properties: {
    value: schedulerToken
    contentType: 'Shared secret of the reminder scheduler (CLAQUETA_SCHEDULER_TOKEN)'
  }
}

resource secretsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, appIdentity.id, keyVaultSecretsUserRole)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRole)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ── Container registry ───────────────────────────────────────────────────────────────────────────────
resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  name: registryName
  location: location
  tags: tags
  sku: {
    name: 'Basic'
  }
  properties: {
    adminUserEnabled: false
  }
}

resource imagePuller 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, appIdentity.id, acrPullRole)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPullRole)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ── Web app ──────────────────────────────────────────────────────────────────────────────────────────
resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'linux'
  sku: {
    name: appServiceSku
    capacity: instanceCount
  }
  properties: {
    reserved: true
  }
}

// Versionless secret URIs: a secret rotated in Key Vault reaches the app without a redeployment.
var secretUriBase = 'https://${keyVaultName}${environment().suffixes.keyvaultDns}/secrets/'

var baseAppSettings = [
  {
    name: 'MicrosoftAppId'
    value: botAppId
  }
  {
    name: 'MicrosoftAppType'
    value: 'SingleTenant'
  }
  {
    name: 'MicrosoftAppTenantId'
    value: tenantId
  }
  {
    name: 'MicrosoftAppPassword'
    value: '@Microsoft.KeyVault(SecretUri=${secretUriBase}${botSecret.name})'
  }
  {
    name: 'CLAQUETA_LOCAL_MODE'
    value: 'false'
  }
  {
    name: 'CLAQUETA_BACKEND'
    value: 'graph'
  }
  {
    name: 'CLAQUETA_PUBLIC_HOST'
    value: publicHost
  }
  {
    name: 'CLAQUETA_DATA_DIR'
    value: '/var/lib/claqueta'
  }
  {
    name: 'CLAQUETA_LOG_LEVEL'
    value: 'INFO'
  }
  {
    name: 'GRAPH_TENANT_ID'
    value: tenantId
  }
  {
    name: 'GRAPH_CLIENT_ID'
    value: graphClientId
  }
  {
    name: 'GRAPH_CLIENT_SECRET'
    value: '@Microsoft.KeyVault(SecretUri=${secretUriBase}${graphSecret.name})'
  }
  {
    name: 'SHAREPOINT_SITE_ID'
    value: sharepointSiteId
  }
  {
    name: 'SHAREPOINT_DRIVE_ID'
    value: sharepointDriveId
  }
  {
    name: 'OFFICE_MAILBOX'
    value: officeMailbox
  }
  {
    name: 'OUTLOOK_ORIGINATOR_ID'
    value: outlookOriginatorId
  }
  {
    name: 'GRAPH_ROLE_GROUPS'
    value: string(roleGroups)
  }
  {
    name: 'GRAPH_AREA_DIRECTORS'
    value: string(areaDirectors)
  }
  {
    name: 'CLAQUETA_PEOPLE_FILE'
    value: peopleFile
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: insights.properties.ConnectionString
  }
  {
    name: 'WEBSITES_PORT'
    value: '3978'
  }
  // Nothing is kept on an instance's disk: no shared /home mount.
  {
    name: 'WEBSITES_ENABLE_APP_SERVICE_STORAGE'
    value: 'false'
  }
  {
    name: 'WEBSITES_CONTAINER_START_TIME_LIMIT'
    value: '230'
  }
]

var schedulerAppSettings = empty(schedulerToken) ? [] : [
  {
    name: 'CLAQUETA_SCHEDULER_TOKEN'
    value: '@Microsoft.KeyVault(SecretUri=${secretUriBase}scheduler-token)'
  }
]

var extraAppSettingsList = [for setting in items(extraAppSettings): {
  name: setting.key
  value: string(setting.value)
}]

resource webApp 'Microsoft.Web/sites@2023-12-01' = {
  name: webAppName
  location: location
  tags: tags
  kind: 'app,linux,container'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${appIdentity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientAffinityEnabled: false
    keyVaultReferenceIdentity: appIdentity.id
    siteConfig: {
      linuxFxVersion: 'DOCKER|${registry.properties.loginServer}/${containerImage}'
      acrUseManagedIdentityCreds: true
      acrUserManagedIdentityID: appIdentity.properties.clientId
      alwaysOn: true
      healthCheckPath: '/healthz'
      http20Enabled: true
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: concat(baseAppSettings, schedulerAppSettings, extraAppSettingsList)
    }
  }
  dependsOn: [
    secretsReader
    imagePuller
    schedulerSecret
  ]
}

// Scale out stays at the plan's instance count; the platform removes an instance whose /healthz fails.

resource webAppLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: webApp
  properties: {
    workspaceId: workspace.id
    logs: [
      {
        category: 'AppServiceConsoleLogs'
        enabled: true
      }
      {
        category: 'AppServiceHTTPLogs'
        enabled: true
      }
      {
        category: 'AppServicePlatformLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

// ── Azure Bot ────────────────────────────────────────────────────────────────────────────────────────
resource bot 'Microsoft.BotService/botServices@2022-09-15' = {
  name: botName
  location: 'global'
  tags: tags
  kind: 'azurebot'
  sku: {
    name: botSku
  }
  properties: {
    displayName: 'Claqueta'
    description: 'Producción de piezas audiovisuales de OCOIM (PROINVERSIÓN)'
    endpoint: 'https://${publicHost}/api/messages'
    msaAppId: botAppId
    msaAppType: 'SingleTenant'
    msaAppTenantId: tenantId
    publicNetworkAccess: 'Enabled'
  }
}

resource teamsChannel 'Microsoft.BotService/botServices/channels@2022-09-15' = {
  parent: bot
  name: 'MsTeamsChannel'
  location: 'global'
  properties: {
    channelName: 'MsTeamsChannel'
    properties: {
      isEnabled: true
      acceptedTerms: true
    }
  }
}

resource outlookChannel 'Microsoft.BotService/botServices/channels@2022-09-15' = {
  parent: bot
  name: 'OutlookChannel'
  location: 'global'
  properties: {
    channelName: 'OutlookChannel'
  }
}

// ── What the next steps need ─────────────────────────────────────────────────────────────────────────
output webAppName string = webApp.name
output publicHost string = publicHost
output defaultHostName string = webApp.properties.defaultHostName
output messagingEndpoint string = 'https://${publicHost}/api/messages'
output registryName string = registry.name
output registryLoginServer string = registry.properties.loginServer
output keyVaultName string = keyVault.name
output botName string = bot.name
output appIdentityClientId string = appIdentity.properties.clientId
output appInsightsName string = insights.name
output logAnalyticsWorkspaceName string = workspace.name
