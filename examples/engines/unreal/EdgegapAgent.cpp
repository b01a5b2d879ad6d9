#include "EdgegapAgent.h"

#include "HttpModule.h"
#include "Interfaces/IHttpRequest.h"
#include "Interfaces/IHttpResponse.h"
#include "Misc/EngineVersionComparison.h"

// Set by the agent for the game it starts, e.g. "http://127.0.0.1:8899". Empty when the
// server runs without the agent (editor, local tests): every call is then a no-op.
static FString AgentUrl() { return FPlatformMisc::GetEnvironmentVariable(TEXT("EDGEGAP_AGENT_URL")); }

void FEdgegapAgent::FetchDeployment(TFunction<void(const FString& Json)> OnJson)
{
	if (AgentUrl().IsEmpty()) { OnJson(FString()); return; }
	TSharedRef<IHttpRequest, ESPMode::ThreadSafe> Request = FHttpModule::Get().CreateRequest();
	Request->SetURL(AgentUrl() + TEXT("/v1/deployment"));
	Request->SetVerb(TEXT("GET"));
	Request->OnProcessRequestComplete().BindLambda(
		[OnJson](FHttpRequestPtr, FHttpResponsePtr Response, bool bOk)
		{
			// request_id, public_ip, ports[{name, internal, external, protocol, join_address}]:
			// parse with FJsonSerializer if you need fields.
			const bool bGood = bOk && Response.IsValid() && Response->GetResponseCode() == 200;
			if (!bGood) UE_LOG(LogTemp, Warning, TEXT("Edgegap agent unreachable; carrying on"));
			OnJson(bGood ? Response->GetContentAsString() : FString());
		});
	Request->ProcessRequest();
}

void FEdgegapAgent::MarkReady() { Post(TEXT("/v1/ready"), TEXT("{}")); }

void FEdgegapAgent::EndMatch(const FString& Reason, const FString& Delay)
{
	Post(TEXT("/v1/match/end"),
		FString::Printf(TEXT("{\"reason\":\"%s\",\"delay\":\"%s\"}"), *Reason.ReplaceCharWithEscapedChar(), *Delay));
}

void FEdgegapAgent::Post(const FString& Path, const FString& Json)
{
	if (AgentUrl().IsEmpty()) return;
	TSharedRef<IHttpRequest, ESPMode::ThreadSafe> Request = FHttpModule::Get().CreateRequest();
	Request->SetURL(AgentUrl() + Path);
	Request->SetVerb(TEXT("POST"));
	Request->SetHeader(TEXT("Content-Type"), TEXT("application/json"));
	const FString Token = FPlatformMisc::GetEnvironmentVariable(TEXT("EDGEGAP_AGENT_API_TOKEN"));
	if (!Token.IsEmpty()) Request->SetHeader(TEXT("Authorization"), TEXT("Bearer ") + Token);
	Request->SetContentAsString(Json);
	Request->OnProcessRequestComplete().BindLambda(
		[Path](FHttpRequestPtr, FHttpResponsePtr Response, bool bOk)
		{
			if (!bOk || !Response.IsValid() || Response->GetResponseCode() >= 300)
				UE_LOG(LogTemp, Warning, TEXT("Edgegap agent %s failed"), *Path);
		});
	Request->ProcessRequest();
}
